"""The migrate step's write counters, in the run folder: what a restore needs to tell its writes from others'.

``stats-migrate-start.json`` before the upgrade, ``stats-migrate-end.json``
after it (and, while it runs, after each COMMIT: the own writes so far, so a
pod that vanishes leaves them behind). See
:mod:`alembic_operator.job.checks.writecounters` for how the restore uses them.
Best effort: without a location or S3 the migration still runs, and a later
restore counts every write as foreign.

Must not: fail or slow down the migration over bookkeeping.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors, location
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import postgres
from alembic_operator.job.migrations import observing
from alembic_operator.job.storage import manifest, s3

log = logging.getLogger(__name__)


class MigrateStats:
    """Write counters around the upgrade, in the run folder (best effort)."""

    def __init__(self, loc: location.Location | None) -> None:
        self.loc = loc
        self.bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket) if loc else None

    @classmethod
    def from_env(cls) -> MigrateStats:
        uri = os.environ.get(location.ENV)
        if not uri:
            log.info("no %s: write counters are not recorded", location.ENV)
            return cls(None)
        try:
            return cls(location.Location.parse(uri))
        except errors.StepError as exc:
            log.warning("write counters are not recorded: %s", exc.message)
            return cls(None)

    async def record_start(self, conn: Any) -> None:
        await self._record(location.STATS_MIGRATE_START, conn)

    async def record_end(self, conn: Any, *, watch: observing.CommitWatch, failed: bool) -> None:
        # Commits and rollbacks alike were counted on every observed session: a failed run's own writes are
        # complete too, unless a capture failed or an autocommit statement wrote rows.
        await self._record(
            location.STATS_MIGRATE_END,
            conn,
            ownWrites=watch.own_writes,
            ownWritesComplete=watch.own_writes_complete,
            sharedConnection=watch.observed,
            failed=failed,
            sessions=watch.sessions,
            unmarkedSessions=watch.unmarked_sessions,
        )

    def record_progress(self, watch: observing.CommitWatch) -> None:
        """After each COMMIT, from the migration's thread: the own writes so far, where the restore reads them.

        A subset of the migration's writes is safe to subtract (what is left counts as foreign), so a pod
        that vanishes mid-migration still leaves its committed revisions' writes accounted for.
        """
        if self.loc is None or self.bucket is None:
            return
        doc = writecounters.document(
            stage="migrate-progress",
            stats={},
            taken_at=manifest.timestamp(datetime.now(UTC)),
            ownWrites=watch.own_writes,
            ownWritesComplete=watch.own_writes_complete,
            inProgress=True,
            commits=watch.commits,
        )
        self.bucket.put_json(self.loc.key(location.STATS_MIGRATE_END), doc)

    async def _record(self, name: str, conn: Any, **extra: Any) -> None:
        if self.loc is None or self.bucket is None:
            return
        try:
            counters = await postgres.settled_write_stats_async(conn, polls=2)
            doc = writecounters.document(
                stage=name.removesuffix(".json"),
                stats=counters,
                taken_at=manifest.timestamp(datetime.now(UTC)),
                **extra,
            )
            self.bucket.put_json(self.loc.key(name), doc)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a migration
            log.warning("could not record %s: %s: %s", name, type(exc).__name__, exc)
