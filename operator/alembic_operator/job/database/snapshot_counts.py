"""Count the backup's rows while pg_dump streams, on a second connection in the dump's snapshot.

The backup step exports one snapshot and pg_dump reads it (``--snapshot``). Counting every
table (``count(*)``) in the exporting transaction before starting pg_dump made the dump wait
for a full scan of the database. Here a thread opens a second connection, imports the same
snapshot (``SET TRANSACTION SNAPSHOT``, REPEATABLE READ) and counts while pg_dump streams:
the counts still describe exactly the dumped rows, and the scan overlaps the dump.

Afterwards the same thread re-reads the write counters (outside its transaction) once the
stats interval has passed since the backup's read, to tell whether that read had settled
(:data:`alembic_operator.job.checks.writecounters.SETTLE_INTERVAL_SECONDS`). The manifest
keeps the read taken *before* the snapshot either way: a write racing the backup then counts
as foreign at restore time, never as backed up (safety rule 3); ``settled`` only says whether
the figures may also hold writes committed just before the backup that the server had not
published yet.

Must not: write anything, or keep a failing step alive: the caller joins with
:meth:`Counting.result` before its COMMIT when the dump succeeded; when it failed, the count is
abandoned (a daemon thread, its connection ends with the step's process).
"""

from __future__ import annotations

import re
import threading
import time

from alembic_operator.api import errors
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import postgres, urls


class Counting:
    """One background count of every application table in ``snapshot`` (``exact``; else only the
    counters' settle check); :meth:`result` waits for it."""

    def __init__(
        self,
        *,
        url: urls.DatabaseURL,
        snapshot: str,
        exact: bool,
        stats: writecounters.Counters,
        stats_read_at: float,
    ) -> None:
        if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
            raise errors.BackupFailed(f"unexpected snapshot id {snapshot!r} from pg_export_snapshot()")
        self._url = url
        self._snapshot = snapshot
        self._exact = exact
        self._stats = {t: {c: int(v[c]) for c in writecounters.COUNTERS} for t, v in stats.items()}
        self._stats_read_at = stats_read_at
        self._counts: dict[str, int] = {}
        self._settled = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-counts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with postgres.connect(url=self._url) as conn:
                if self._exact:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    conn.execute(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")  # checked in __init__
                    self._counts = postgres.exact_counts(conn)
                    conn.execute("COMMIT")
                wait = self._stats_read_at + writecounters.SETTLE_INTERVAL_SECONDS - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                conn.execute("SELECT pg_stat_clear_snapshot()")
                now = postgres.write_stats(conn)
                again = {t: {c: int(v[c]) for c in writecounters.COUNTERS} for t, v in now.items()}
                self._settled = writecounters.settled(self._stats, again)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by result()
            self._failure = exc

    def result(self) -> tuple[dict[str, int], bool]:
        """(``{label: rows}``, whether the write counters had settled); the thread's error re-raised."""
        self._thread.join()
        if self._failure is not None:
            if isinstance(self._failure, errors.StepError):
                raise self._failure
            raise errors.BackupFailed(f"counting the rows in the dump's snapshot failed: {self._failure}")
        return self._counts, self._settled
