"""Credentials: a password given as ``?password=`` in the URL reaches the tools only through PGPASSWORD.

The client tools run through wrappers that record ``/proc/<pid>/cmdline`` (their argv exactly
as the kernel holds it, readable by anyone on the node) and whether PGPASSWORD was set; the
steps run as console scripts, as in a Job pod. A hostile password (``@``, ``%``, quotes,
``&``, ``=``, spaces, unicode) must appear in no command line, and in no message when libpq fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from alembic_operator.job.database import pgtools, urls
from testbed import postgres as tb_postgres
from tests.example.support import HEAD, app_dir, run_cli

from . import location_for, step_env

pytestmark = pytest.mark.testbed

HOSTILE = "p@ss w%rd'\"&password=x?é✓"
WRAPPED = ("pg_dump", "pg_restore", "psql")


def _wrappers(directory: Path, *, real: Path, log: Path) -> Path:
    """A bin dir whose tools log their own /proc cmdline and PGPASSWORD's presence, then exec the real one."""
    directory.mkdir()
    for tool in WRAPPED:
        script = directory / tool
        script.write_text(
            "#!/bin/sh\n"
            # one append per run: the restore's pg_restore and psql run at once, and separate
            # appends of the two would interleave their lines
            "line=$(tr '\\0' ' ' < /proc/$$/cmdline)\n"
            '[ -n "$PGPASSWORD" ] && line="$line [PGPASSWORD set]"\n'
            f"printf '%s\\n' \"$line\" >> '{log}'\n"
            f"exec '{real / tool}' \"$@\"\n"
        )
        script.chmod(0o755)
    return directory


@pytest.fixture
def hostile_url(pg15: tb_postgres.PostgresServer) -> Any:
    """A fresh database owned by a superuser whose password is HOSTILE, given only as ``?password=``."""
    role = "hostile_" + pg15.create_database().split("_")[-1]
    pg15.create_role(role, HOSTILE, superuser=True)
    name = pg15.create_database(owner=role)
    yield f"postgresql://{role}@{pg15.host}:{pg15.port}/{name}?password={quote(HOSTILE, safe='')}"
    pg15.drop_database(name)
    pg15.drop_role(role)


def _leaks(text: str) -> list[str]:
    forms = {HOSTILE, quote(HOSTILE, safe=""), quote(HOSTILE), "w%rd'"}
    return [form for form in forms if form in text]


def test_a_query_string_password_is_never_on_a_tool_command_line(
    hostile_url: str, pg15: tb_postgres.PostgresServer, s3: Any, bucket: str, tmp_path: Path
) -> None:
    log = tmp_path / "cmdlines.log"
    bin_dir = _wrappers(tmp_path / "bin", real=pg15.bin_dir, log=log)
    env = step_env(database_url=None, s3=s3, PG_BIN_DIRS=str(bin_dir))
    loc = location_for(bucket)
    runs = {
        "migrate": run_cli("migrate", url=hostile_url, cwd=app_dir(), tmp_path=tmp_path, env=env),
        "backup": run_cli("backup", "--location", loc, url=hostile_url, cwd=app_dir(), tmp_path=tmp_path, env=env),
        "restore": run_cli(
            "restore", "--location", loc, "--on-foreign-writes", "restore",
            url=hostile_url, cwd=app_dir(), tmp_path=tmp_path, env=env,
        ),
    }  # fmt: skip
    assert {step: run.message for step, run in runs.items() if run.code != 0} == {}
    assert runs["migrate"].data["toRevision"] == HEAD
    lines = log.read_text().splitlines()
    real_runs = [ln for ln in lines if "--version" not in ln]
    # `pg_restore -l ARCHIVE` only lists an archive's contents: it never connects, so needs no password
    connecting = [ln for ln in real_runs if not re.search(r"/pg_restore -l ", ln)]
    assert {tool for tool in WRAPPED if any(f"/{tool} " in ln for ln in real_runs)} == set(WRAPPED), lines
    assert all(ln.endswith("[PGPASSWORD set]") for ln in connecting), connecting
    assert _leaks(log.read_text()) == []
    for run in runs.values():
        assert _leaks(run.stdout + run.stderr + str(run.result)) == []


def test_a_libpq_error_does_not_echo_a_query_string_password(
    hostile_url: str, pg15: tb_postgres.PostgresServer, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """pg_dump rejects a parameter asyncpg never reads: the failure names the parameter, not the password."""
    log = tmp_path / "cmdlines.log"
    env = step_env(database_url=None, s3=s3, PG_BIN_DIRS=str(_wrappers(tmp_path / "bin", real=pg15.bin_dir, log=log)))
    url = hostile_url + "&no_such_parameter=1"
    run = run_cli("backup", "--location", location_for(bucket), url=url, cwd=app_dir(), tmp_path=tmp_path, env=env)
    assert run.code != 0
    assert "no_such_parameter" in run.message, run.message
    assert _leaks(run.stdout + run.stderr + str(run.result) + log.read_text()) == []


@pytest.mark.parametrize(
    "query",
    ["password=", "%70assword=", "passwor%64="],
    ids=["plain", "encoded-name-start", "encoded-name-end"],
)
def test_a_password_parameter_in_any_spelling_moves_out_of_the_conninfo(query: str) -> None:
    url = urls.DatabaseURL.parse(f"postgresql://app@db:5432/shop?{query}{quote(HOSTILE, safe='')}&sslmode=require")
    conninfo, env = pgtools.libpq_env(url=url)
    assert url.password == HOSTILE and env["PGPASSWORD"] == HOSTILE
    assert conninfo == "postgresql://app@db:5432/shop?sslmode=require"
    assert _leaks(url.tls_dsn() + url.redacted() + url.query) == []
