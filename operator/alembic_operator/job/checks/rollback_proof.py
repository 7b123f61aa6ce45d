"""Say "unchanged" after a failed restore only when a check shows it: the state read again equals before.

A restore runs in one transaction, so a failure should leave the database as it was; this module
proves it instead of assuming it. It reads the schema fingerprint and row counts once the server
answers again (a restore cut short by a server restart is read back when the server is up) and
compares them with those read before the restore. Equal: the failure is reported as rolled back,
``changedDatabase: false``. Different or unreadable: "may have changed", naming what differs.

Must not: change the database, or retry the restore (the step and the operator decide that).
"""

from __future__ import annotations

import time
from typing import Any

from alembic_operator.api import errors
from alembic_operator.job.database import fingerprint, loading, postgres, sessions, urls

#: How long the proof of a rolled-back restore waits for the server to accept connections again
#: (a restore cut short by a server restart is read back once the server is up).
READ_BACK_WAIT_SECONDS = 60.0


def _state_after(*, url: urls.DatabaseURL, lock_timeout: bool) -> tuple[dict[str, Any], str | None]:
    """The database's state (and, after a lock timeout, who held the locks), waiting for the server.

    Only an unreachable server is waited for, up to :data:`READ_BACK_WAIT_SECONDS`; any other
    error, or the server still away then, is raised.
    """
    deadline = time.monotonic() + READ_BACK_WAIT_SECONDS
    while True:
        try:
            with postgres.connect(url=url) as conn:
                blockers = sessions.describe(sessions.blockers(conn)) if lock_timeout else None
                return postgres.state(conn), blockers
        except errors.DatabaseUnreachable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def proven_rollback(exc: errors.StepError, *, url: urls.DatabaseURL, before: dict[str, Any]) -> errors.StepError:
    """The failure as reported: "unchanged" only when the state read now equals ``before``.

    A cause other than the load's own failure (a streamed chunk that differs, S3 gone mid-stream)
    keeps its class, so whether a new attempt may pass is decided as before.

    A lock wait that ran out names the sessions holding locks. Anything that differs (or
    cannot be read) makes it "may have changed" (``changedDatabase: true``), naming what.
    """
    message = exc.message
    try:
        after, blockers = _state_after(url=url, lock_timeout="lock timeout" in message)
        if blockers is not None:
            message += f"; waited for: {blockers}"
    except errors.StepError as err:
        after, message = None, f"{message}; the database state could not be read after it ({err.message})"
    changed = (
        ["unreadable"]
        if after is None
        else fingerprint.differences(before["schema"], after["schema"])
        + (["row counts"] if before["rows"] != after["rows"] else [])
    )
    if changed:
        result = errors.RestoreFailed(
            f"{message}; the database differs from before the restore ({', '.join(changed)}): it may have changed",
            rolledBack=False,
        )
        result.changed_database = True
        return result
    unchanged = f"{message}; the database is unchanged (schema fingerprint and row counts equal those before)"
    if not isinstance(exc, errors.RestoreFailed):
        return type(exc)(unchanged, **exc.details)
    proven = loading.rolled_back(unchanged)
    proven.details.update({k: v for k, v in exc.details.items() if k != "rolledBack"})
    return proven
