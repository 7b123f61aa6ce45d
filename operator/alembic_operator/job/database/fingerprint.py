"""A fingerprint of a database's schema, to tell whether a failed migration left anything behind.

PostgreSQL runs DDL in transactions, so a failing Alembic upgrade usually rolls
back completely; but not with ``transaction_per_migration``, after an
``autocommit_block``, or when a script commits by itself. Comparing a
fingerprint taken before the run with one taken after a failure (together with
the version table) is what lets migrate say "no changes were committed" and
the operator skip the restore.

The fingerprint covers what DDL can change: relations (tables, views,
sequences, indexes...), columns (type, nullability, default), constraints,
indexes, types, functions and triggers, in every non-system schema. It does
not cover data: a committed data-only change is caught by the commit watch in
:mod:`alembic_operator.job.migrations.alembic_runtime`, not here.

Only catalog columns are read, never ``pg_get_expr``/``pg_get_indexdef``:
those open the relation and would queue behind an application's lock.

Must not: write anything, or take locks on the application's tables.
"""

from __future__ import annotations

import hashlib
from typing import Any

_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

#: One query per object class; each returns text rows, sorted for stability.
QUERIES: dict[str, str] = {
    "schemas": f"SELECT n.nspname FROM pg_namespace n WHERE {_USER_NS} ORDER BY 1",
    "relations": f"""SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS} ORDER BY 1, 2""",
    "columns": f"""SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull::text, coalesce(d.adbin::text, ''), a.attnum::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND {_USER_NS} ORDER BY 1, 2, 3""",
    "constraints": f"""SELECT n.nspname, c.relname, k.conname, k.contype::text, k.conkey::text,
               coalesce(k.confrelid::regclass::text, ''), coalesce(k.confkey::text, ''),
               k.confupdtype::text, k.confdeltype::text, k.condeferrable::text, coalesce(k.conbin::text, '')
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS} ORDER BY 1, 2, 3""",
    "indexes": f"""SELECT n.nspname, c.relname, t.relname, i.indisunique::text, i.indisprimary::text,
               i.indkey::text, i.indclass::text, i.indoption::text,
               coalesce(i.indexprs::text, ''), coalesce(i.indpred::text, '')
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS} ORDER BY 1, 2""",
    "types": f"""SELECT n.nspname, t.typname, t.typtype::text,
               coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'r', 'm') AND {_USER_NS} ORDER BY 1, 2""",
    "functions": f"""SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_NS} ORDER BY 1, 2, 3""",
    "triggers": f"""SELECT n.nspname, c.relname, t.tgname, t.tgfoid::regprocedure::text, t.tgtype::text,
               t.tgenabled::text, coalesce(t.tgqual::text, '')
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {_USER_NS} ORDER BY 1, 2, 3""",
}


async def take(conn: Any) -> dict[str, str]:
    """Per-class SHA-256 digests of the schema, read on asyncpg ``conn`` (one snapshot)."""
    digests: dict[str, str] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for name, sql in QUERIES.items():
            rows = await conn.fetch(sql)
            h = hashlib.sha256()
            for row in rows:
                h.update("\x1f".join("" if v is None else str(v) for v in row).encode())
                h.update(b"\x1e")
            digests[name] = h.hexdigest()
    return digests


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The object classes whose digest changed (e.g. ``["relations", "columns"]``)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
