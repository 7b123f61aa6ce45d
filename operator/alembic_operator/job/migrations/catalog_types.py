"""A column's type before the upgrade, from the live catalog, for type changes whose revision does not say it.

The plan step, when it read the database's revision through DATABASE_URL,
asks ``pg_attribute`` for the type of each column an ``ALTER COLUMN ... TYPE``
changes, and writes it above the statement as the same hint the revision's
``existing_type`` gives (:func:`.widening.hint`), so ``varchar(100)`` →
``varchar(200)`` is known to widen. Only for the plan's first statement that
names the table: a table created, renamed or changed earlier in the plan is
not what the catalog shows, so its type changes stay flagged.

Must not: write to the database, read anything but the catalog, or fail the
plan (a lookup that fails leaves the statements flagged).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg

from alembic_operator.api import errors
from alembic_operator.job.database import urls
from alembic_operator.job.migrations import alembic_runtime, destructive, widening

_TYPE_SQL = """
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
"""


def first_touches(sql: str) -> dict[int, tuple[str, str]]:
    """Statement index → (table, column) of each type change the catalog can speak for (see module docstring)."""
    found: dict[int, tuple[str, str]] = {}
    seen: set[str] = set()
    for index, (_, statement) in enumerate(destructive.attributed_statements(sql)):
        change = destructive.type_change(statement)
        if change is not None and widening.hinted_type(statement) is None and not widening.widens(change[2]):
            table, column, _ = change
            if table.rsplit(".", 1)[-1].strip('"').lower() not in seen:
                found[index] = (table, column)
        seen |= destructive.names(statement)
    return found


def hint_existing_types(sql: str, url: urls.DatabaseURL) -> str:
    """``sql`` with a hint above each type change the catalog names the old type of; unchanged when it cannot."""
    wanted = first_touches(sql)
    if not wanted:
        return sql
    try:
        types = asyncio.run(_read(url, set(wanted.values())))
    except (OSError, asyncpg.PostgresError, errors.StepError):
        return sql  # no hint: those changes stay flagged, as without a database
    indexes = itertools.count()  # comment_each visits the statements in the order first_touches numbered them

    def hint_for(_statement: str) -> str | None:
        target = wanted.get(next(indexes))
        existing = types.get(target) if target else None
        return widening.hint(column=".".join(target), existing_type=existing) if target and existing else None

    return destructive.comment_each(sql, hint_for)


async def _read(url: urls.DatabaseURL, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    conn: Any = await alembic_runtime.connect(url, application="alembic-operator plan")
    try:
        found: dict[tuple[str, str], str] = {}
        for table, column in sorted(wanted):
            existing = await conn.fetchval(_TYPE_SQL, table, column)
            if existing:
                found[(table, column)] = str(existing)
        return found
    finally:
        await conn.close()
