"""Foreign writes: which tables other sessions wrote to since the backup. Pure: no I/O.

A restore brings the database back to the backup's snapshot and so throws
away every row written since — by the migration (that is the point) and by
anyone else (the application kept serving: that is the danger, safety rule 3).
PostgreSQL's cumulative statistics (``pg_stat_user_tables``: n_tup_ins,
n_tup_upd, n_tup_del per table) tell them apart well enough:

1. the backup step records the counters just before exporting its snapshot
   (``manifest.json`` ``writeStats``; read before the snapshot, so a write
   racing it is counted as foreign, never missed);
2. the migrate step records them at its start and end
   (``stats-migrate-start.json`` / ``stats-migrate-end.json``) and, on the
   migration's own connection right before each COMMIT, that transaction's
   own counts (``pg_stat_xact_user_tables``): the migration's own writes;
3. the restore step records them again just before restoring
   (``stats-pre-restore.json``) and computes, per table,
   ``(now - backup) - migration's own``: what other sessions wrote.

The figures are approximate, and err towards "foreign": counters include
rolled-back writes, and a backend publishes its counters at most once a
second while busy (up to ~10 s later when it then goes idle; at once when it
disconnects), which is why the readers poll until the counters stop moving
(:data:`SETTLE_INTERVAL_SECONDS`) — unless every other session is long idle
(:data:`QUIET_IDLE_SECONDS`), when nothing is left to publish. The restore, which
discards what it misses, polls until then (:data:`PUBLISH_WAIT_SECONDS` at most). A table whose counters went down was
dropped and re-created, or the statistics were reset: everything it now
shows counts; tables are matched by OID, so a rename is not a new table.
When the migration's own writes are unknown (a custom migrate command, rows
written inside an autocommit block, a statement that failed after writing
rows) they count as foreign too, and the result says so; every engine an
env.py creates is observed (:mod:`alembic_operator.job.migrations.observing`).

Must not: read the clock or do I/O; the steps bring the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

#: The counters compared, as pg_stat_user_tables names them.
COUNTERS = ("n_tup_ins", "n_tup_upd", "n_tup_del")
#: Version of the stats-*.json documents.
VERSION = 1
#: How long the readers wait between two polls of the counters: just over PostgreSQL's
#: PGSTAT_MIN_INTERVAL (1 s), the longest a busy backend keeps its counts to itself.
SETTLE_INTERVAL_SECONDS = 1.2
#: At most this many polls: a table written continuously never settles, and then the last read counts.
SETTLE_MAX_POLLS = 4
#: A backend idle this long has published its counts (PostgreSQL 15+ flushes an idle backend's pending
#: counts at most PGSTAT_IDLE_INTERVAL, 10 s, after it went idle; one that disconnects, at once). When
#: every other session of the database is such a backend, a read needs no settle poll (see postgres.py).
QUIET_IDLE_SECONDS = 11
#: How long a restore's read waits for other sessions to publish: a session that wrote within a second
#: of its last publish (say, right after it connected) keeps its counts until it has idled for
#: PGSTAT_IDLE_INTERVAL, longer than :data:`SETTLE_MAX_POLLS` polls last; the rows it wrote would be
#: discarded unseen. One more poll than that covers it; then the last read counts.
PUBLISH_WAIT_SECONDS = QUIET_IDLE_SECONDS + SETTLE_INTERVAL_SECONDS
#: Tables listed in results (the termination message is 4 KiB); the stats document keeps them all.
MAX_LISTED = 20

Counters = Mapping[str, Mapping[str, int]]


class TableWrites(TypedDict):
    """One table's line in ``foreignWrites.tables``: rows written since the backup, by kind."""

    table: str
    rows: int
    inserted: int
    updated: int
    deleted: int


def delta(before: Counters, after: Counters) -> dict[str, dict[str, int]]:
    """Per-table counter growth from ``before`` to ``after``, keyed by ``after``'s names.

    Tables are matched by ``relid`` (the relation's OID) when both sides have
    it, so a table the migration renamed keeps its history and one dropped and
    re-created under the same name starts from zero; else by name. A table
    whose counters went down (statistics reset) also counts from zero.
    """
    by_relid = {int(v["relid"]): v for v in before.values() if v.get("relid") is not None}
    out: dict[str, dict[str, int]] = {}
    for table, now in after.items():
        then = before.get(table) or {}
        relid = now.get("relid")
        if relid is not None and then.get("relid") != relid:
            then = by_relid.get(int(relid)) or {}
        if any(int(now.get(c, 0)) < int(then.get(c, 0)) for c in COUNTERS):
            then = {}  # re-created or reset: all it shows is new
        grown = {c: int(now.get(c, 0)) - int(then.get(c, 0)) for c in COUNTERS}
        if any(grown.values()):
            out[table] = grown
    return out


def subtract(total: Counters, own: Counters) -> dict[str, dict[str, int]]:
    """``total - own`` per table and counter, never below zero; tables left with nothing are dropped."""
    out: dict[str, dict[str, int]] = {}
    for table, counts in total.items():
        mine = own.get(table) or {}
        left = {c: max(0, int(counts.get(c, 0)) - int(mine.get(c, 0))) for c in COUNTERS}
        if any(left.values()):
            out[table] = left
    return out


def add(into: dict[str, dict[str, int]], more: Counters) -> dict[str, dict[str, int]]:
    """Accumulate per-table counts (the migration's commits, one after the other)."""
    for table, counts in more.items():
        acc = into.setdefault(table, {c: 0 for c in COUNTERS})
        for c in COUNTERS:
            acc[c] += int(counts.get(c, 0))
    return into


def foreign(*, backup: Counters, now: Counters, own: Counters | None) -> dict[str, dict[str, int]]:
    """What other sessions wrote since the backup: growth since ``backup`` minus the migration's ``own``."""
    return subtract(delta(backup, now), own or {})


def settled(previous: Counters | None, current: Counters) -> bool:
    """Whether two polls agree (the counters stopped moving)."""
    return previous is not None and {k: dict(v) for k, v in previous.items()} == {
        k: dict(v) for k, v in current.items()
    }


def report(found: Mapping[str, Mapping[str, int]], *, own_known: bool, stats_uri: str | None) -> dict[str, Any]:
    """The restore result's ``foreignWrites`` (what status.foreignWrites is made of), most rows first."""
    tables = sorted(
        (
            TableWrites(
                table=t,
                rows=sum(int(c.get(k, 0)) for k in COUNTERS),
                inserted=int(c.get("n_tup_ins", 0)),
                updated=int(c.get("n_tup_upd", 0)),
                deleted=int(c.get("n_tup_del", 0)),
            )
            for t, c in found.items()
        ),
        key=lambda item: (-item["rows"], item["table"]),
    )
    return {
        "tables": tables[:MAX_LISTED],
        "tablesTotal": len(tables),
        "rows": sum(t["rows"] for t in tables),
        "ownWritesKnown": own_known,
        "statsUri": stats_uri,
    }


def describe(rep: Mapping[str, Any], limit: int = 5) -> str:
    """``public.task: ~120 rows, public.project: ~3 rows`` for messages."""
    tables = list(rep.get("tables") or [])
    parts = [f"{t['table']}: ~{t['rows']} rows" for t in tables[:limit]]
    more = int(rep.get("tablesTotal") or len(tables)) - len(parts)
    if more > 0:
        parts.append(f"{more} more table{'s' if more != 1 else ''}")
    return ", ".join(parts)


def document(*, stage: str, taken_at: str, stats: Counters, **extra: Any) -> dict[str, Any]:
    """A stats-*.json document: the counters of every table at one moment, plus what the stage adds."""
    return {
        "v": VERSION,
        "stage": stage,
        "takenAt": taken_at,
        "stats": {t: dict(c) for t, c in sorted(stats.items())},
        **extra,
    }


def own_writes(doc: Any) -> dict[str, dict[str, int]] | None:
    """The migration's own writes from stats-migrate-end.json; None when unknown or incomplete."""
    if not isinstance(doc, dict) or not doc.get("ownWritesComplete"):
        return None
    own = doc.get("ownWrites")
    if not isinstance(own, dict):
        return None
    return {str(t): {c: int((v or {}).get(c, 0)) for c in COUNTERS} for t, v in own.items()}
