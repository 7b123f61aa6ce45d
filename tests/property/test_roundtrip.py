"""Generated names and contents survive backup → verify → restore (issue 13, identifiers and content).

Hypothesis makes schemas and tables named with quotes, dots, dollar signs, spaces, backslashes,
unicode and exactly 63 bytes, filled with NULLs, bytea, text holding backslashes, tabs, newlines
and COPY's own markers (``\\N``, ``\\.``), and numerics (NaN included). Each example runs the real
steps on one PostgreSQL 15 server and one S3 server for the whole session (a fresh database and
bucket per example): backup, verify (which must pass: nothing changed), then the tables are
damaged (one dropped, the others emptied and given a foreign row) and restore must bring back
every table with exactly its rows.

``make test`` runs :data:`EXAMPLES` examples (small); ``ROUNDTRIP_EXAMPLES=200`` runs more.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.steps import location_for, run_step, step_env

pytestmark = pytest.mark.testbed

EXAMPLES = int(os.environ.get("ROUNDTRIP_EXAMPLES", "4"))
#: PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
MAX_NAME_BYTES = 63

_NAME_CHARS = st.sampled_from(list('abcXYZ019_"."$ \\\'-éß✓日\t')) | st.characters(
    min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")
)


def _fit(name: str, *, exactly: bool) -> str:
    """``name`` cut at a character boundary to at most 63 bytes (padded to exactly 63 with ``exactly``)."""
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    if exactly:
        name += "x" * (MAX_NAME_BYTES - len(name.encode()))
    return name


def _usable(name: str) -> bool:
    return bool(name.strip()) and not name.lower().startswith("pg_") and name not in ("information_schema", "public")


names = st.builds(_fit, st.text(_NAME_CHARS, min_size=1, max_size=70), exactly=st.booleans()).filter(_usable)

texts = (
    st.none()
    | st.sampled_from(["\\", "\\N", "\\.", "a\tb", "line\nbreak", "cr\r\n", "", "'", '"'])
    | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)  # no surrogates, no NUL
)
numerics = (
    st.none()
    | st.just(Decimal("NaN"))
    | st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False)
)
rows = st.lists(st.tuples(texts, st.none() | st.binary(max_size=24), numerics), max_size=12)
tables = st.lists(st.tuples(names, names, rows), min_size=1, max_size=3, unique_by=lambda t: (t[0], t[1]))


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, Decimal):
        return f"'{value}'::numeric"
    return "'" + str(value).replace("'", "''") + "'"  # standard_conforming_strings: backslashes are data


def create_sql(generated: list[tuple[str, str, list[tuple[Any, ...]]]]) -> str:
    sql = []
    for schema, table, content in generated:
        name = f"{ident(schema)}.{ident(table)}"
        sql.append(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)};")
        sql.append(f"CREATE TABLE {name} (id serial PRIMARY KEY, t text, b bytea, n numeric);")
        for row in content:
            sql.append(f"INSERT INTO {name} (t, b, n) VALUES ({', '.join(literal(v) for v in row)});")
    return "\n".join(sql)


def content(server: Any, database: str) -> dict[tuple[str, str], str]:
    """Every user table, keyed by (schema, table), with its row count and a digest of its ordered rows."""
    tables = server.query(  # each name quoted by the server (format %I), so any name is exact
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), n.nspname, c.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'",
        database,
    )
    digests = {}
    for qualified, schema, table in tables:
        digests[(schema, table)] = server.scalar(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '') FROM {qualified} x",
            database,
        )
    return digests


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=tables)
def test_generated_names_and_rows_round_trip_through_backup_verify_restore(
    generated: list[tuple[str, str, list[tuple[Any, ...]]]], pg15: Any, s3: Any, tmp_path: Path
) -> None:
    server = pg15
    database = server.create_database()
    bucket = s3.create_bucket()
    try:
        server.execute(create_sql(generated), database)
        before = content(server, database)
        assert len(before) == len(generated)
        env = step_env(database_url=server.url(database), s3=s3)
        loc = location_for(bucket)
        code, _, _, stderr = run_step(["backup", "--location", loc], env=env, tmp_path=tmp_path)
        assert code == 0, stderr
        code, result, _, stderr = run_step(["verify", "--location", loc], env=env, tmp_path=tmp_path)
        assert code == 0 and result is not None and result["ok"] is True, stderr

        (schema, table, _), *others = generated
        damage = [f"DROP TABLE {ident(schema)}.{ident(table)};"]
        for other_schema, other_table, _ in others:
            name = f"{ident(other_schema)}.{ident(other_table)}"
            damage.append(f"DELETE FROM {name}; INSERT INTO {name} (t) VALUES ('foreign');")
        server.execute("\n".join(damage), database)
        assert content(server, database) != before

        code, result, _, stderr = run_step(
            ["restore", "--location", loc, "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
        )
        assert code == 0 and result is not None and result["ok"] is True, stderr
        assert content(server, database) == before
    finally:
        server.drop_database(database)
        s3.delete_bucket(bucket)
