"""Which sibling backups retention deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic_operator.job.storage import retention

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _backups(*ages_hours: float | None) -> list[retention.Backup]:
    return [
        retention.Backup(prefix=f"p/r{i}/", finished_at=None if age is None else NOW - timedelta(hours=age))
        for i, age in enumerate(ages_hours)
    ]


def test_no_policy_deletes_nothing() -> None:
    assert retention.select_for_deletion(backups=_backups(1, 2, 3), current="p/r0/", now=NOW) == []


def test_keep_last_deletes_the_oldest_beyond_n_oldest_first() -> None:
    doomed = retention.select_for_deletion(backups=_backups(0, 5, 1, 9, 3), current="p/r0/", now=NOW, keep_last=2)
    assert doomed == ["p/r3/", "p/r1/", "p/r4/"]


def test_folders_without_manifest_are_neither_counted_nor_deleted() -> None:
    doomed = retention.select_for_deletion(backups=_backups(0, None, 1, None, 2), current="p/r0/", now=NOW, keep_last=2)
    assert doomed == ["p/r4/"]


def test_max_age_deletes_older_backups() -> None:
    doomed = retention.select_for_deletion(
        backups=_backups(0, 30, 10, 50), current="p/r0/", now=NOW, max_age_seconds=24 * 3600
    )
    assert doomed == ["p/r3/", "p/r1/"]


def test_either_limit_alone_deletes() -> None:
    doomed = retention.select_for_deletion(
        backups=_backups(0, 1, 2, 48), current="p/r0/", now=NOW, keep_last=3, max_age_seconds=24 * 3600
    )
    assert doomed == ["p/r3/"]


def test_the_newest_good_backup_is_kept_even_when_too_old() -> None:
    doomed = retention.select_for_deletion(
        backups=_backups(100, 200), current="p/other/", now=NOW, max_age_seconds=3600
    )
    assert doomed == ["p/r1/"]


def test_the_current_backup_is_never_deleted() -> None:
    backups = _backups(1, 300)
    doomed = retention.select_for_deletion(backups=backups, current="p/r1/", now=NOW, keep_last=1, max_age_seconds=60)
    assert doomed == []


def test_keep_last_one_keeps_only_the_current() -> None:
    doomed = retention.select_for_deletion(backups=_backups(0, 1, 2), current="p/r0/", now=NOW, keep_last=1)
    assert doomed == ["p/r2/", "p/r1/"]
