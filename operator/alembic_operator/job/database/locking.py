"""The advisory lock that keeps two migrations of one schema apart (safety rule 4).

Alembic has no locking of its own. The migrate step takes a *session-level*
advisory lock on a connection of its own and keeps it for the whole run, so
it survives the migration's own commits and rollbacks and is released by
PostgreSQL if the pod dies. The key is derived from the database name and
the version table's schema: migrations of other schemas of the same
database (each with its own version table) do not wait for each other.

Must not: take any lock other than the advisory one, or hold a transaction open.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from alembic_operator.api import errors

#: How often a waiting migrate retries ``pg_try_advisory_lock``.
POLL_SECONDS = 0.5


def lock_key(database: str, schema: str) -> int:
    """A signed 64-bit key (what ``pg_advisory_lock(bigint)`` takes) for (database, schema)."""
    digest = hashlib.sha256(f"alembic-operator\0{database}\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def acquire(conn: Any, *, key: int, wait_seconds: float, what: str) -> float:
    """Take the lock on asyncpg ``conn``, waiting up to ``wait_seconds``; return the seconds waited.

    Polling ``pg_try_advisory_lock`` (rather than a blocking ``pg_advisory_lock``
    under a lock_timeout) keeps the wait bounded even if the server ignores
    cancellation, and lets the error say who holds the lock.
    """
    start = time.monotonic()
    deadline = start + max(0.0, wait_seconds)
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            holder = await holder_description(conn, key)
            raise errors.LockTimeout(
                f"another migration of {what} holds the migration lock{holder}; "
                f"gave up after {wait_seconds:g}s (--lock-wait-seconds)"
            )
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())) or 0.01)


async def holder_description(conn: Any, key: int) -> str:
    """`` (pid N, application X, since T)`` for the session holding the lock, or ``""``."""
    row = await conn.fetchrow(
        """SELECT a.pid, a.application_name, a.backend_start
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted
             AND l.classid = (($1::bigint >> 32) & 4294967295)::oid
             AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
           LIMIT 1""",
        key,
    )
    if row is None:
        return ""
    app = f", application {row['application_name']!r}" if row["application_name"] else ""
    return f" (pid {row['pid']}{app}, connected since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z})"


async def release(conn: Any, *, key: int) -> None:
    """Release the lock (closing the connection releases it too)."""
    await conn.fetchval("SELECT pg_advisory_unlock($1)", key)
