"""The restore's row-count guard: checked inside its one transaction, and the counts it reports.

:func:`count_guard` is SQL that :mod:`alembic_operator.job.database.loading` feeds psql after
pg_restore's script: it aborts the transaction naming the first table missing or whose count differs
from the manifest, and with ``count_all`` counts every application table once and leaves the counts
in a transaction-local setting; :func:`report_sql` prints them on one line after a random marker just
before COMMIT, and :func:`read_counted` reads them back from psql's output. So the counts a restore
reports are those of the state COMMIT makes visible, without a second scan after it.

Names travel as hex-encoded JSON (:func:`alembic_operator.job.database.identifiers.payload`), never as text.
Must not: run psql or decide what to restore.
"""

from __future__ import annotations

import json
from typing import IO

from alembic_operator.job.database import identifiers, postgres

#: The setting the count guard leaves its counts in (``count_all``), printed before COMMIT: the
#: restore's report comes from the transaction that commits, not from a second scan after it.
COUNTED_SETTING = "alembic_operator.counted"

#: Created in the restore's transaction (``begin``): checks the counts and, with ``count_all``, keeps them.
HELPERS_SQL = """
CREATE FUNCTION pg_temp.alembic_operator_check_counts(expected jsonb, count_all boolean) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE item jsonb; n bigint; r record; seen jsonb := '{}'; counted jsonb := '[]';
BEGIN
  FOR item IN SELECT * FROM pg_catalog.jsonb_array_elements(expected) LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', item->'name'->>0, item->'name'->>1)) IS NULL THEN
      RAISE EXCEPTION 'row count check: % is missing', item->>'label';
    END IF;
    CONTINUE WHEN pg_catalog.jsonb_typeof(item->'rows') IS DISTINCT FROM 'number';
    EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', item->'name'->>0, item->'name'->>1) INTO n;
    IF n <> (item->>'rows')::bigint THEN
      RAISE EXCEPTION 'row count check: % has % rows, expected %', item->>'label', n, item->>'rows';
    END IF;
    seen := seen || pg_catalog.jsonb_build_object(
      pg_catalog.to_regclass(pg_catalog.format('%I.%I', item->'name'->>0, item->'name'->>1))::oid::text, n);
  END LOOP;
  IF count_all THEN  -- every application table, each counted once: what the restore reports
    FOR r IN @USER_TABLES@ LOOP
      IF seen ? r.oid::text THEN
        n := (seen->>r.oid::text)::bigint;
      ELSE
        EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', r.schema, r.name) INTO n;
      END IF;
      counted := counted || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(r.schema, r.name, n));
    END LOOP;
    PERFORM pg_catalog.set_config('@COUNTED@', counted::text, true);
  END IF;
END $f$;
""".replace("@USER_TABLES@", postgres.USER_TABLES_SQL.strip()).replace("@COUNTED@", COUNTED_SETTING)


def count_guard(*, expected: dict[str, int | None], count_all: bool = False) -> str:
    """A call that aborts the transaction naming the first table missing or whose count differs.

    ``expected`` maps labels to counts; ``None`` checks only that the table exists (an estimate).
    With ``count_all`` it then counts every application table (those just checked are not scanned
    again) and leaves the counts for the load to return (:func:`read_counted`): what COMMIT makes visible.
    """
    if not expected and not count_all:
        return ""
    items = [
        {"name": list(identifiers.parse(label)), "label": label, "rows": rows}
        for label, rows in sorted(expected.items())
    ]
    return (
        f"SELECT pg_temp.alembic_operator_check_counts({identifiers.payload(items)}, "
        f"{'true' if count_all else 'false'});\n"
    )


#: ``(schema, table) → rows`` of every application table, counted inside the restore's transaction.
Counted = dict[tuple[str, str], int]


def report_sql(*, marker: str) -> str:
    """Print the guard's counts on one line after ``marker`` (a random token: no line of the script can forge it)."""
    return f"SELECT '{marker}' || pg_catalog.current_setting('{COUNTED_SETTING}', true);\n"


def read_counted(handle: IO[bytes], *, marker: str) -> Counted | None:
    """The counts :func:`report_sql` printed (psql's output also holds the script's own SELECT results)."""
    handle.seek(0)
    for line in handle:
        if line.startswith(marker.encode()):
            text = line[len(marker) :].strip()
            if not text:
                return None  # the guard did not count (count_all off)
            return {(str(s), str(t)): int(n) for s, t, n in json.loads(text)}
    return None
