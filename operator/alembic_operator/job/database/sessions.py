"""Whose sessions are these: the run's own marking, its orphans, and who blocks a restore.

The migrate step marks every session it opens with :func:`migrate_application_name`
(≤ 63 bytes, PostgreSQL's limit, and one per run: derived from the run folder's
URI). A migrate pod killed mid-way can leave such a session behind, idle in a
transaction that holds locks; the restore of the same run ends those sessions
first (:func:`end_orphans`), and when a lock wait still runs out it names who
holds the locks (:func:`blockers`): pid, application_name, state, since when.

Must not: end any session but the run's own (same database, exact name), or
fail the step when ending is not permitted (the lock limit still applies).
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from alembic_operator.api import errors, location
from alembic_operator.job.database import postgres

PREFIX = "alembic-operator:migrate:"
#: PostgreSQL truncates application_name to NAMEDATALEN - 1 bytes.
MAX_BYTES = 63


def migrate_application_name(run_uri: str | None) -> str:
    """``alembic-operator:migrate:<16 hex digits of the run folder's SHA-256>`` (41 bytes)."""
    if not run_uri:
        return "alembic-operator:migrate"
    with contextlib.suppress(errors.StepError):
        run_uri = location.Location.parse(run_uri).uri()  # one spelling per run folder
    name = PREFIX + hashlib.sha256(run_uri.encode()).hexdigest()[:16]
    assert len(name.encode()) <= MAX_BYTES
    return name


def end_orphans(conn: postgres.Connection, *, application_name: str) -> tuple[list[int], list[int]]:
    """Terminate the run's own leftover sessions in this database; (pids ended, pids it may not end)."""
    pids = [
        int(r["pid"])
        for r in conn.fetch(
            """SELECT pid FROM pg_catalog.pg_stat_activity
               WHERE datname = pg_catalog.current_database() AND application_name = $1
                 AND pid <> pg_catalog.pg_backend_pid()""",
            application_name,
        )
    ]
    ended: list[int] = []
    refused: list[int] = []
    for pid in pids:
        try:  # allowed for the same role, pg_signal_backend members and superusers
            (ended if conn.fetchval("SELECT pg_catalog.pg_terminate_backend($1, 5000)", pid) else refused).append(pid)
        except errors.StepError:
            refused.append(pid)
    return ended, refused


def blockers(conn: postgres.Connection, *, limit: int = 5) -> list[dict[str, Any]]:
    """Other sessions holding a relation lock in this database, oldest transaction first."""
    rows = conn.fetch(
        """SELECT DISTINCT a.pid, a.application_name, a.state,
                  coalesce(a.xact_start, a.state_change, a.backend_start) AS since
           FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
           WHERE l.granted AND l.locktype = 'relation' AND a.pid <> pg_catalog.pg_backend_pid()
             AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
           ORDER BY since, pid LIMIT $1""",
        limit,
    )
    return [
        {
            "pid": int(r["pid"]),
            "applicationName": r["application_name"] or "",
            "state": r["state"] or "",
            "since": r["since"].isoformat() if r["since"] is not None else None,
        }
        for r in rows
    ]


def describe(found: list[dict[str, Any]]) -> str:
    """``pid 812 (application 'psql', idle in transaction since 2025-…)``, joined with ``; ``."""
    if not found:
        return "no session holds a lock any more"
    return "; ".join(
        f"pid {b['pid']} (application {b['applicationName']!r}, {b['state'] or 'state unknown'} since {b['since']})"
        for b in found
    )
