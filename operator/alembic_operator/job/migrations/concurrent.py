"""After a failed CREATE INDEX CONCURRENTLY: drop the INVALID index it left, and say who it waited for.

A CONCURRENTLY build that fails (it waited longer than its lock timeout for
older transactions, or a unique violation) leaves an INVALID index behind:
the application pays for its upkeep, and re-running the revision fails with
"already exists". The step drops it (only if it is INVALID: a valid index of
that name is someone's) and names the transactions that held the build up,
so the message can say what a retry needs.

Must not: drop a valid index, or end anyone's session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alembic_operator.api import text


@dataclass
class Cleanup:
    """What the step found and did after the failed build."""

    index: str
    dropped: bool = False
    error: str | None = None
    #: Older transactions of the database: pid, application_name, state, since (oldest first).
    waited_for: list[dict[str, Any]] = field(default_factory=list)

    def describe(self, timeout: str) -> str:
        """One clause for the migrate message: what happened, what was cleaned, what a retry needs."""
        who = "; ".join(
            f"pid {w['pid']} ({w['application'] or 'no application_name'}, {w['state']}, since {w['since']})"
            for w in self.waited_for
        )
        parts = [
            f"CREATE INDEX CONCURRENTLY {self.index} did not finish (it waits up to {timeout}, "
            f"--concurrent-lock-timeout, for every older transaction of the database to end)"
        ]
        if who:
            parts.append(f"older transactions: {who}")
        if self.dropped:
            parts.append(f"the INVALID index {self.index} it left was dropped")
        elif self.error:
            parts.append(f"the INVALID index {self.index} could not be dropped ({self.error}): drop it before a retry")
        parts.append("a retry needs those transactions to end first, or a longer concurrent lock timeout")
        return "; ".join(parts)


async def clean_up(conn: Any, *, index: str, own_application: str) -> Cleanup:
    """On the step's own asyncpg connection (outside a transaction): note the blockers, drop the INVALID index."""
    cleanup = Cleanup(index=index)
    try:
        rows = await conn.fetch(
            """SELECT pid, application_name, state, coalesce(xact_start, backend_start) AS since
               FROM pg_catalog.pg_stat_activity
               WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()
                 AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND application_name <> $1
               ORDER BY xact_start NULLS LAST, pid LIMIT 3""",
            own_application,
        )
        cleanup.waited_for = [
            {
                "pid": int(r["pid"]),
                "application": r["application_name"] or "",
                "state": r["state"] or "",
                "since": r["since"].isoformat(timespec="seconds") if r["since"] is not None else "?",
            }
            for r in rows
        ]
        invalid = await conn.fetchval(
            """SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
               WHERE i.indexrelid = pg_catalog.to_regclass($1) AND NOT i.indisvalid""",
            index,
        )
        if invalid:
            # plain DROP INDEX: a brief lock on the index's table (under the step's lock_timeout); CONCURRENTLY
            # would wait for the very transactions that made the build fail
            await conn.execute(f"DROP INDEX IF EXISTS {invalid}")
            cleanup.dropped = True
    except Exception as exc:  # noqa: BLE001 - the message says what could not be done
        cleanup.error = f"{type(exc).__name__}: {text.first_line(exc)}"
    return cleanup
