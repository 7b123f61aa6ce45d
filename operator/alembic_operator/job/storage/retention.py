"""Which sibling run folders to delete after a new backup. Pure: no I/O.

Only folders with a manifest.json (and no failed restore-verification) are
good backups; others (in progress, failed) are never counted nor deleted here.
A good backup is deleted when it is beyond the newest ``keep_last`` or older
than ``max_age_seconds`` — either limit alone is enough — but the current
run's folder and the newest good backup are always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backup:
    """A sibling run folder as listed in S3."""

    prefix: str
    finished_at: datetime | None
    """From its manifest; None when the folder has no (good) manifest."""

    @property
    def good(self) -> bool:
        return self.finished_at is not None


def select_for_deletion(
    *,
    backups: list[Backup],
    current: str,
    now: datetime,
    keep_last: int | None = None,
    max_age_seconds: float | None = None,
) -> list[str]:
    """Prefixes to delete, oldest first."""
    if keep_last is None and max_age_seconds is None:
        return []
    good = sorted((b for b in backups if b.good), key=lambda b: (b.finished_at, b.prefix), reverse=True)
    protected = {current}
    if good:
        protected.add(good[0].prefix)
    doomed: list[Backup] = []
    for index, backup in enumerate(good):
        if backup.prefix in protected:
            continue
        assert backup.finished_at is not None
        too_many = keep_last is not None and index >= keep_last
        too_old = max_age_seconds is not None and now - backup.finished_at > timedelta(seconds=max_age_seconds)
        if too_many or too_old:
            doomed.append(backup)
    return [b.prefix for b in reversed(doomed)]
