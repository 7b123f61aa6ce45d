"""What a restore checks before it touches the database; each check changes nothing.

1. :func:`refuse_unrestorable` (full restore): the restoring role may act as
   every role owning the backup's objects and drop the current schemas and
   large objects (:mod:`alembic_operator.job.database.owners`), and the
   database-level state the backup recorded can be put back in the restore's
   one transaction (:func:`alembic_operator.job.database.database_state.preflight`).
2. :func:`refuse_triggers` (``--table``): every user trigger on the chosen
   tables can be switched off by the restoring role (:mod:`alembic_operator.job.database.triggers`).
3. :func:`check_foreign_writes`: what other sessions wrote since the backup
   (a restore discards it); holds when told to.

Each refusal is RestoreFailed with ``changedDatabase: false``, naming what.
Must not: write to the database (the write-counter reports go to S3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors, location
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import database_state, owners, postgres, scope, triggers, urls
from alembic_operator.job.storage import manifest, s3


def _refuse(message: str, **details: object) -> errors.RestoreFailed:
    exc = errors.RestoreFailed(f"refused before touching the database: {message}", **details)
    exc.changed_database = False
    return exc


def refuse_unrestorable(*, url: urls.DatabaseURL, doc: dict[str, Any]) -> None:
    """RestoreFailed (nothing touched) naming what a full restore from manifest ``doc`` could not put
    back: database-level state and objects whose owners the role may not act as."""
    with postgres.connect(url=url) as conn:
        dropping = scope.to_drop(doc=doc, current=scope.schemas(conn))
        found = owners.refusals(conn, recorded=doc.get("owners"), dropping=dropping) + database_state.preflight(
            conn, recorded=doc.get("databaseState"), scoped=dropping is not None
        )
    if found:
        raise _refuse(f"the restore cannot put back {'; '.join(found)}", unrestorable=found)


def refuse_triggers(*, url: urls.DatabaseURL, tables: list[str]) -> None:
    """RestoreFailed (nothing touched) naming the user triggers on ``tables`` the role cannot switch off."""
    with postgres.connect(url=url) as conn:
        found = triggers.unmanageable(conn, tables=tables)
    if found:
        raise _refuse(
            f"{', '.join(found)} would fire during the table restore and only the table's owner may "
            "switch them off: restore as the owner",
            triggers=found,
        )


def check_foreign_writes(
    *,
    url: urls.DatabaseURL,
    bucket: s3.Bucket,
    loc: location.Location,
    doc: dict[str, Any],
    tables: list[str],
    hold: bool,
) -> dict[str, Any] | None:
    """Count other sessions' writes since the backup, record them, and stop if told to hold.

    Returns the ``foreignWrites`` report (None when the backup has no write
    counters to compare with, e.g. an older manifest). Changes nothing in the
    database; raises ForeignWritesDetected when ``hold`` and any were found.
    """
    baseline = doc.get("writeStats")
    if not isinstance(baseline, dict):
        return None
    own_doc = None
    if bucket.exists(loc.key(location.STATS_MIGRATE_END)):
        try:
            own_doc = bucket.get_json(loc.key(location.STATS_MIGRATE_END))
        except errors.StorageError:
            own_doc = None
    own = writecounters.own_writes(own_doc)
    with postgres.connect(url=url) as conn:
        now = postgres.settled_write_stats(conn, until_published=True)  # a restore discards what it misses
    found = writecounters.foreign(backup=baseline, now=now, own=own)
    found = {t: c for t, c in found.items() if scope.holds(t, scope.of(doc))}  # another app's writes are its own
    if tables:
        found = {t: c for t, c in found.items() if t in tables}
    stats_uri = loc.uri(location.STATS_PRE_RESTORE)
    report = writecounters.report(found, own_known=own is not None, stats_uri=stats_uri)
    bucket.put_json(
        loc.key(location.STATS_PRE_RESTORE),
        writecounters.document(
            stage="pre-restore",
            taken_at=manifest.timestamp(datetime.now(UTC)),
            stats=now,
            foreignWrites=report,
            foreignWritesByTable=found,
            ownWrites=own,
        ),
    )
    if hold and report["rows"]:
        unknown = "" if own is not None else " (the migration's own writes could not be told apart)"
        raise errors.ForeignWritesDetected(
            f"other sessions wrote ~{report['rows']} rows since the backup ({writecounters.describe(report)})"
            f"{unknown}; a restore would discard them, so nothing was restored",
            foreignWrites=report,
        )
    return report
