"""Sequences after a restore never hand out a value already handed out (issue 13, finding 7).

A restore brings every sequence back to its value in the dump; rows written
since (and discarded) had taken the values after it, and an external system
may hold those ids. So, inside the restore's transaction:

1. :data:`HELPERS_SQL`'s ``remember()`` copies every sequence's current
   ``last_value`` (``pg_sequences``) into a temporary table, before the
   schemas are dropped;
2. after the dump's script, ``keep_higher()`` sets each sequence of the same
   schema and name whose restored value is lower back to the remembered one
   (``setval(…, true)``): each ends at the larger of the two.

:func:`kept` (after COMMIT) lists the sequences whose value is the one read
before the restore — kept at or above the dump's — for the step's result.

Must not: touch a sequence the dump does not hold, or lower any value.
"""

from __future__ import annotations

from typing import Any

from alembic_operator.job.database import identifiers, postgres

VALUES_SQL = """SELECT schemaname AS schema, sequencename AS name, last_value
FROM pg_catalog.pg_sequences ORDER BY 1, 2"""

HELPERS_SQL = """
CREATE FUNCTION pg_temp.alembic_operator_remember_sequences() RETURNS void LANGUAGE sql AS $f$
  CREATE TEMPORARY TABLE alembic_operator_sequences ON COMMIT DROP AS
    SELECT schemaname, sequencename, last_value FROM pg_catalog.pg_sequences WHERE last_value IS NOT NULL;
$f$;
CREATE FUNCTION pg_temp.alembic_operator_keep_higher_sequences() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE r record;
BEGIN
  FOR r IN SELECT o.schemaname, o.sequencename, o.last_value
           FROM pg_temp.alembic_operator_sequences o JOIN pg_catalog.pg_sequences s
             ON s.schemaname = o.schemaname AND s.sequencename = o.sequencename
           WHERE s.last_value IS NULL OR s.last_value < o.last_value LOOP
    PERFORM pg_catalog.setval(pg_catalog.format('%I.%I', r.schemaname, r.sequencename), r.last_value, true);
  END LOOP;
END $f$;
"""

REMEMBER = "SELECT pg_temp.alembic_operator_remember_sequences();"
KEEP_HIGHER = "SELECT pg_temp.alembic_operator_keep_higher_sequences();\n"


def values(conn: postgres.Connection) -> dict[str, int]:
    """``{label: last_value}`` of every sequence that has handed out a value."""
    return {
        identifiers.label(r["schema"], r["name"]): int(r["last_value"])
        for r in conn.fetch(VALUES_SQL)
        if r["last_value"] is not None
    }


def kept(*, before: dict[str, int], after: dict[str, int]) -> list[dict[str, Any]]:
    """Sequences that kept the value read before the restore (it was not below the dump's)."""
    return [{"sequence": s, "value": v} for s, v in sorted(before.items()) if after.get(s) == v]
