"""User triggers a ``restore --table`` must switch off, and the ones it may not.

A table restore empties and refills tables with the backup's rows; a user
trigger firing meanwhile (ON TRUNCATE, ON INSERT) would rewrite those rows or
write to other tables. ``session_replication_role = replica`` needs a
superuser, so the restore runs ``ALTER TABLE … DISABLE TRIGGER USER`` in its
transaction (:mod:`alembic_operator.job.database.loading`), which needs the
table's owner: :func:`unmanageable` names, before anything is touched, the
triggers on tables the restoring role does not own.

Must not: change anything.
"""

from __future__ import annotations

import json

from alembic_operator.job.database import identifiers, postgres

UNMANAGEABLE_SQL = """
SELECT n.nspname AS schema, c.relname AS name, t.tgname AS trigger
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')
  AND (n.nspname, c.relname) IN (SELECT x->>0, x->>1 FROM pg_catalog.jsonb_array_elements($1::jsonb) x)
ORDER BY 1, 2, 3"""


def unmanageable(conn: postgres.Connection, *, tables: list[str]) -> list[str]:
    """``"trigger T on S.X"`` for each user trigger on ``tables`` the connected role cannot switch off."""
    names = json.dumps([list(identifiers.parse(t)) for t in tables])
    return [
        f"trigger {r['trigger']} on {identifiers.label(r['schema'], r['name'])}"
        for r in conn.fetch(UNMANAGEABLE_SQL, names)
    ]
