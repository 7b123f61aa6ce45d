"""Reading the write counters skips the settle poll only when no other session can hold counts.

The restore (and the rehearsal, the migrate step) reads pg_stat_user_tables to tell what other
sessions wrote since the backup; a backend publishes its counts up to seconds late, so the read
polled every 1.2 s until the counters stopped moving — 1.2 s on every restore, also of a database
nobody else was connected to (issue 18). A session that disconnected has published its counts; an
idle one has after PGSTAT_IDLE_INTERVAL. These tests show a write is never missed for it: a
session still connected and lately active gets the poll, one that wrote and left is counted — and
that the restore, which discards what it misses, waits until a connected session has published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alembic_operator.api import errors
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import postgres as pg_adapter
from alembic_operator.job.database import urls

from . import backed_up, location_for, run_step, step_env

pytestmark = pytest.mark.testbed


@pytest.fixture
def settle_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The settle poll's waits (asyncio.sleep of SETTLE_INTERVAL_SECONDS), recorded; they still wait."""
    real = asyncio.sleep
    waits: list[float] = []

    async def recorded(delay: float, *args: Any, **kwargs: Any) -> Any:
        if delay == writecounters.SETTLE_INTERVAL_SECONDS:
            waits.append(delay)
        return await real(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    yield waits


def _read(database: Any, *, until_published: bool = False) -> dict[str, dict[str, int]]:
    with pg_adapter.connect(url=urls.DatabaseURL.parse(database.url)) as conn:
        return pg_adapter.settled_write_stats(conn, until_published=until_published)


def test_a_database_no_other_session_is_connected_to_is_read_without_the_settle_poll(
    database: Any, settle_waits: list[float]
) -> None:
    database.execute("CREATE TABLE item (id int); INSERT INTO item VALUES (1), (2)")  # psql: then it disconnects
    stats = _read(database)
    assert stats["public.item"]["n_tup_ins"] == 2  # its session left: its counts are published and read
    assert settle_waits == []


def test_a_session_that_wrote_a_moment_ago_and_stays_connected_gets_the_settle_poll(
    database: Any, settle_waits: list[float]
) -> None:
    database.execute("CREATE TABLE item (id int)")
    with psycopg.connect(database.url, autocommit=True) as app:
        app.execute("INSERT INTO item VALUES (1)")  # idle now, for less than QUIET_IDLE_SECONDS
        _read(database)
    assert settle_waits  # it may still hold counts (this one does: written within 1 s of its last publish)


def test_a_session_in_an_open_transaction_gets_the_settle_poll(database: Any, settle_waits: list[float]) -> None:
    database.execute("CREATE TABLE item (id int)")
    with psycopg.connect(database.url) as app:
        app.execute("SELECT 1")  # idle in transaction
        _read(database)
    assert settle_waits


def test_a_session_idle_longer_than_the_publish_interval_needs_no_poll(
    database: Any, settle_waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writecounters, "QUIET_IDLE_SECONDS", 0.5)  # PostgreSQL's 10 s, scaled down
    database.execute("CREATE TABLE item (id int)")
    with psycopg.connect(database.url, autocommit=True) as app:
        time.sleep(1.1)  # a backend publishes at most once a second (it did when it connected) ...
        app.execute("INSERT INTO item VALUES (1), (2), (3)")  # ... so these counts go out as it goes idle
        time.sleep(0.8)  # then it idles past the (scaled) interval
        stats = _read(database)
    assert stats["public.item"]["n_tup_ins"] == 3
    assert settle_waits == []


def test_the_restores_read_waits_for_a_connected_session_that_holds_its_counts(database: Any) -> None:
    """A backend publishes at most once a second: a write within a second of its last publish (here,
    of connecting) stays unpublished until it has idled ~10 s — longer than the settle poll lasts.
    The restore's read waits for it; without the wait it read 0 here, and a restore discarded the row."""
    database.execute("CREATE TABLE item (id int)")
    with psycopg.connect(database.url, autocommit=True) as app:
        app.execute("INSERT INTO item VALUES (1)")
        restore_read = _read(database, until_published=True)
    assert restore_read["public.item"]["n_tup_ins"] == 1


def test_a_restore_holds_for_a_write_a_still_connected_session_has_not_published_yet(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up(database, s3, bucket, tmp_path)
    with psycopg.connect(database.url, autocommit=True) as app:  # the application, still connected
        app.execute("INSERT INTO project (name) VALUES ('written by the app right after it connected')")
        code, _, _, stderr = run_step(
            ["restore", "--location", location_for(bucket), "--on-foreign-writes", "hold"],
            env=step_env(database_url=database.url, s3=s3),
            tmp_path=tmp_path,
        )
    assert code == errors.ForeignWritesDetected.exit_code, stderr
    assert "public.project" in stderr
    assert database.scalar("SELECT count(*) FROM project WHERE name LIKE 'written by the app%'") == "1"
