"""Any name PostgreSQL allows survives backup -> verify -> restore, and none of them runs as psql input.

Round 1 spliced table names into a DO block inside a fixed dollar quote: a name holding the
tag ended the block and psql ran what followed, ``\\!`` shell commands included. Names are
data now (:mod:`alembic_operator.job.database.identifiers`); these names try every way out.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.job.database import identifiers

from . import location_for, read_json, run_step, step_env

pytestmark = pytest.mark.testbed


def _hostile_names(marker: str) -> list[tuple[str, str]]:
    escape = f"\\! touch {marker}"
    names = [
        ("public", f"$alembic_operator$; {escape}"),
        ("public", f"$f$ END $f$; {escape}"),
        ("public", f"x'); {escape} --"),
        ("public", f'a"b"; {escape}'),
        ("public", "$$ dollar $$"),
        ("my.schema", "dotted.table name"),
        ("ünï ✓", "spaces and ünicode ✓"),
        ("public", "n" * 63),
        ("public", "é" * 31 + "x"),  # 63 bytes
    ]
    assert all(len(t.encode()) <= 63 for _, t in names)
    return names


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create(database: Any, names: list[tuple[str, str]]) -> None:
    """Create each table through format('%I') on the server, so the test itself splices no name."""
    for schema, table in names:
        s, t = _sql_literal(schema), _sql_literal(table)
        database.execute(
            f"DO $t$ BEGIN EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', {s}); "
            f"EXECUTE format('CREATE TABLE %I.%I (id int PRIMARY KEY, v text)', {s}, {t}); "
            f"EXECUTE format('INSERT INTO %I.%I SELECT g, %L || g FROM generate_series(1, 7) g', {s}, {t}, {t}); "
            "END $t$"
        )


DIGEST_FUNCTION = """
CREATE FUNCTION public.content_digest() RETURNS text LANGUAGE plpgsql AS $d$
DECLARE r record; part text; acc text := '';
BEGIN
  FOR r IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           ORDER BY 1, 2 LOOP
    EXECUTE format('SELECT md5(string_agg(t::text, $s$|$s$ ORDER BY t::text)) FROM %I.%I t', r.nspname, r.relname)
      INTO part;
    acc := acc || r.nspname || '/' || r.relname || '=' || coalesce(part, '-') || ',';
  END LOOP;
  RETURN md5(acc);
END $d$;
"""


def _content(database: Any) -> str:
    """One digest of every table's name and ordered rows (the server quotes the names)."""
    return str(database.scalar("SELECT public.content_digest()"))


def test_hostile_names_round_trip_and_run_nothing(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    marker = f"/tmp/pwned-{uuid.uuid4().hex[:12]}"
    names = _hostile_names(marker)
    _create(database, names)
    database.execute(DIGEST_FUNCTION)
    before = _content(database)
    env = step_env(database_url=database.url, s3=s3)
    loc = location_for(bucket)

    code, result, _, stderr = run_step(["backup", "--location", loc, "--verify", "restore"], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    assert result is not None and result["data"]["tables"] == len(names)
    stored = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert sorted(tuple(t["name"]) for t in stored["tables"]) == sorted(names)  # pairs, never split on a dot

    # a "failed migration": rows gone from every hostile table, one table dropped
    for schema, table in names:
        s, t = _sql_literal(schema), _sql_literal(table)
        database.execute(f"DO $t$ BEGIN EXECUTE format('DELETE FROM %I.%I WHERE id > 3', {s}, {t}); END $t$")
    database.execute("DO $t$ BEGIN EXECUTE format('DROP TABLE %I.%I', 'my.schema', 'dotted.table name'); END $t$")
    code, _, _, stderr = run_step(["verify", "--location", loc], env=env, tmp_path=tmp_path)
    assert code != 0 and identifiers.label("my.schema", "dotted.table name") in stderr

    # one hostile table alone (truncate + count guard carry the name), then everything
    code, _, _, stderr = run_step(
        ["restore", "--location", loc, "--on-foreign-writes", "restore", "--table", identifiers.label(*names[0])],
        env=env,
        tmp_path=tmp_path,
    )
    assert code == 0, stderr
    code, result, _, stderr = run_step(
        ["restore", "--location", loc, "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == 0, stderr
    assert result is not None and result["data"]["tablesRestored"] == len(names)
    assert _content(database) == before
    assert not os.path.exists(marker), "a table name ran a psql backslash command"
