"""Choosing pg_dump, pg_restore and psql for a server's major version."""

from __future__ import annotations

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import pgtools, urls


def _tool(major: int, minor: int = 1, where: str = "") -> pgtools.Tool:
    return pgtools.Tool(
        name="pg_restore", path=f"{where or f'/pg{major}'}/pg_restore", version=f"{major}.{minor}", major=major
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", ("15.18", 15)),
        ("pg_restore (PostgreSQL) 18.6", ("18.6", 18)),
        ("psql (PostgreSQL) 17beta1", ("17", 17)),
        ("something else", None),
    ],
)
def test_versions_are_parsed_from_the_version_line(text: str, expected: tuple[str, int] | None) -> None:
    assert pgtools.parse_version(text) == expected


def test_the_exact_major_is_preferred_even_when_listed_later() -> None:
    tools = [_tool(18), _tool(16), _tool(15)]
    assert pgtools.choose(tools, name="pg_dump", server_major=15, newer_ok=True).major == 15


def test_pg_dump_may_be_the_nearest_newer_major() -> None:
    tools = [_tool(18), _tool(16), _tool(14)]
    assert pgtools.choose(tools, name="pg_dump", server_major=15, newer_ok=True).major == 16


def test_pg_dump_older_than_the_server_is_refused() -> None:
    with pytest.raises(errors.ToolMissing) as err:
        pgtools.choose([_tool(14, 9)], name="pg_dump", server_major=15, newer_ok=True)
    assert err.value.message.startswith("no usable pg_dump for PostgreSQL 15 (need major 15 or newer; found: 14.9)")


def test_restore_tools_must_match_the_server_exactly() -> None:
    with pytest.raises(errors.ToolMissing) as err:
        pgtools.choose([_tool(18, 6), _tool(16, 2)], name="pg_restore", server_major=15, newer_ok=False)
    assert "need major exactly 15; found: 16.2, 18.6" in err.value.message


def test_no_tools_at_all_says_none_found() -> None:
    with pytest.raises(errors.ToolMissing) as err:
        pgtools.choose([], name="psql", server_major=18, newer_ok=False)
    assert "found: none" in err.value.message and "PG_BIN_DIRS" in err.value.message


def test_pg_bin_dirs_come_first_then_debian_dirs_then_path() -> None:
    dirs = pgtools.candidate_dirs({"PG_BIN_DIRS": "/opt/pg18/bin:/opt/pg15/bin", "PATH": "/usr/bin:/bin"})
    assert dirs[:2] == ["/opt/pg18/bin", "/opt/pg15/bin"]
    assert dirs.index("/usr/bin") > 1


def test_the_password_travels_in_the_environment_not_the_command_line() -> None:
    url = urls.DatabaseURL.parse("postgresql+asyncpg://app:s3cr%40t@db.example:5433/shop?sslmode=require")
    conninfo, env = pgtools.libpq_env(url=url)
    assert "s3cr" not in conninfo
    assert conninfo == "postgresql://app@db.example:5433/shop?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t"
    other, _ = pgtools.libpq_env(url=url, database="scratch")
    assert other.endswith("/scratch?sslmode=require")


def test_discovery_finds_real_tools_on_pg_bin_dirs(tmp_path: object) -> None:
    from testbed import postgres as tb_postgres

    found = pgtools.discover("pg_restore", environ={"PG_BIN_DIRS": str(tb_postgres.bin_dir_for(15)), "PATH": ""})
    assert found and found[0].major == 15


def test_a_tool_that_does_not_answer_in_time_is_named_not_dropped(tmp_path, monkeypatch) -> None:
    """Under load a process start took over 10 s and psql 15 silently left the list ("found: 16, 17, 18")."""
    import pytest

    from alembic_operator.api import errors

    slow = tmp_path / "psql"
    slow.write_text("#!/bin/sh\nsleep 5\necho 'psql (PostgreSQL) 15.8'\n")
    slow.chmod(0o755)
    monkeypatch.setattr(pgtools, "PROBE_SECONDS", 0.3)
    with pytest.raises(errors.ToolMissing, match=r"psql --version did not answer within 0.3s"):
        pgtools.discover("psql", environ={"PG_BIN_DIRS": str(tmp_path), "PATH": ""})
    monkeypatch.setattr(pgtools, "PROBE_SECONDS", 30.0)
    fast = tmp_path / "fast"
    fast.mkdir()
    (fast / "psql").write_text("#!/bin/sh\necho 'psql (PostgreSQL) 15.8'\n")
    (fast / "psql").chmod(0o755)
    found = pgtools.discover("psql", environ={"PG_BIN_DIRS": str(fast), "PATH": ""})
    assert [(t.version, t.major) for t in found if t.path.startswith(str(fast))] == [("15.8", 15)]
