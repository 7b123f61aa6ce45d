"""The session migrate and downgrade hold while Alembic runs: marked, cleared of orphans, under the lock.

1. Connect with the run's ``application_name`` (``alembic-operator:migrate:<hex>``,
   :mod:`alembic_operator.job.database.sessions`) and ``lock_timeout``.
2. End the sessions an earlier pod of the same run left (killed mid-way: idle in
   a transaction, holding locks).
3. Take the advisory lock for (database, version-table schema) (safety rule 4),
   waiting at most ``lock_wait`` seconds.
4. On leaving: release the lock and close the connection.

A downgrade shares the migration's name on purpose: the restore that may follow
it ends the sessions either left behind.

Must not: run Alembic, or decide what a failure means (the commands do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from alembic_operator.api import location
from alembic_operator.job.database import locking, sessions, urls
from alembic_operator.job.migrations import alembic_runtime

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Held:
    """A connection holding the migration lock, and how it got there."""

    conn: Any
    """The asyncpg connection that holds the advisory lock (the step's own queries run on it)."""
    application: str
    """The ``application_name`` every session of the step carries."""
    waited: float
    """Seconds spent waiting for the lock."""
    orphans: list[int]
    """Pids of sessions an earlier pod of the run left, ended before taking the lock."""


@contextlib.asynccontextmanager
async def session(
    url: urls.DatabaseURL, *, schema: str | None, lock_timeout: str, lock_wait: float
) -> AsyncIterator[Held]:
    """Connect, end the run's orphans and take the lock for ``schema`` (None: the session's current schema)."""
    application = sessions.migrate_application_name(os.environ.get(location.ENV))
    conn = await alembic_runtime.connect(url, application=application, settings={"lock_timeout": lock_timeout})
    key: int | None = None
    try:
        orphans = await end_orphans(conn, application)
        lock_schema = schema or await conn.fetchval("SELECT current_schema()") or "public"
        key = locking.lock_key(url.database, lock_schema)
        waited = await locking.acquire(
            conn, key=key, wait_seconds=lock_wait, what=f"database {url.database!r} (schema {lock_schema!r})"
        )
        yield Held(conn=conn, application=application, waited=round(waited, 3), orphans=orphans)
    finally:
        try:
            if key is not None and not conn.is_closed():
                await locking.release(conn, key=key)
        except Exception:  # noqa: BLE001 - closing the session releases the lock anyway
            pass
        await conn.close()


async def end_orphans(conn: Any, application: str) -> list[int]:
    """End the sessions an earlier pod of this run left (killed mid-migration: idle in a transaction, holding locks).

    Only with a run-specific name (a run folder is set): the generic name could be another run's.
    """
    if not application.startswith(sessions.PREFIX):
        return []
    pids = await conn.fetch(
        """SELECT pid FROM pg_catalog.pg_stat_activity
           WHERE datname = pg_catalog.current_database() AND application_name = $1
             AND pid <> pg_catalog.pg_backend_pid()""",
        application,
    )
    ended: list[int] = []
    for row in pids:
        try:  # allowed for the same role, pg_signal_backend members and superusers
            if await conn.fetchval("SELECT pg_catalog.pg_terminate_backend($1, 5000)", row["pid"]):
                ended.append(int(row["pid"]))
        except Exception as exc:  # noqa: BLE001 - not permitted: lock_timeout still bounds the wait
            log.warning("could not end session %s an earlier migrate left: %s", row["pid"], exc)
    if ended:
        log.warning("ended %d session(s) an earlier migrate of this run left: pids %s", len(ended), ended)
    return ended
