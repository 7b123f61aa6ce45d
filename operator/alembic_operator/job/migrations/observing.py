"""Observe every engine and connection an unmodified env.py creates: SQLAlchemy class-level events.

A user's env.py builds its own engine (``engine_from_config``,
``async_engine_from_config``, a Flask app's ``db.engine``...) and never sees
the connection the step offers. Listening on the classes instead of one
connection reaches all of them, whatever thread or event loop they run in:

* ``Pool`` "connect": each new DBAPI connection gets the run's
  ``application_name`` (so a restore or a retry can find a killed pod's
  leftover sessions) and ``lock_timeout``, set with ``SET`` and committed
  before SQLAlchemy uses the connection;
* ``Engine`` "commit" / "rollback": right before either, that transaction's
  own write counts (``pg_stat_xact_user_tables``) are added to the
  migration's own writes (:meth:`CommitWatch.capture_own_writes`); rolled-back
  writes count in PostgreSQL's counters too, so a failed revision's writes
  are the migration's own, not the application's;
* ``Engine`` "set_connection_execution_options": a switch to AUTOCOMMIT
  (``autocommit_block``);
* ``Engine`` "before_cursor_execute": a statement that may write rows run in
  autocommit mode cannot be counted (it commits as it ends), so own writes
  become incomplete; DDL such as ``CREATE INDEX CONCURRENTLY`` writes no rows
  and keeps them complete.

Must not: change what a statement does, or fail a migration over
bookkeeping (a failed capture marks the own writes incomplete instead).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import Pool

from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import identifiers
from alembic_operator.job.database import postgres as pg


@dataclass
class CommitWatch:
    """What happened on the migration's connections: commits, autocommit, the revision running, own writes."""

    commits: int = 0
    autocommit: bool = False
    #: "-> rev" of the last "Running upgrade" log line: the revision that was running when it failed.
    running: str | None = None
    started: list[str] = field(default_factory=list)
    #: The migration's own writes per table (n_tup_ins/upd/del), summed over its transactions.
    own_writes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: A capture failed: own_writes is incomplete.
    own_writes_failed: bool = False
    #: A statement that may write rows ran in autocommit mode: its writes cannot be counted.
    autocommit_writes: bool = False
    #: Whether any statement of the migration was seen (False: the env.py used no engine we could observe).
    observed: bool = False
    #: Sessions marked with the run's application_name and lock_timeout, and those that could not be.
    sessions: int = 0
    unmarked_sessions: int = 0
    #: Per open connection: the transaction's write counts after its last row-writing statement, and
    #: the statement running now (what a rollback falls back on when the aborted transaction refuses queries).
    snapshots: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)
    #: CREATE INDEX CONCURRENTLY: the index being built now (None once it finished) and every one started.
    concurrent_running: str | None = None
    concurrent_indexes: list[str] = field(default_factory=list)
    #: Called after each COMMIT was counted (the migrate step records the own writes so far: a pod that
    #: vanishes later leaves them behind).
    after_commit: Callable[[CommitWatch], None] | None = None
    running_statement: dict[int, str] = field(default_factory=dict)

    @property
    def committed(self) -> bool:
        return self.commits > 0 or self.autocommit

    @property
    def own_writes_complete(self) -> bool:
        """Whether :attr:`own_writes` holds every write of the migration (committed or rolled back)."""
        return self.observed and not self.own_writes_failed and not self.autocommit_writes

    def capture_own_writes(self, conn: Any) -> None:
        """Right before COMMIT or ROLLBACK: add this transaction's own write counts.

        Then ``pg_stat_force_next_flush()`` (PostgreSQL 15+) makes the backend
        publish them as it ends the transaction, so the next transaction's
        pg_stat_xact_* view starts from zero and no count is added twice. An
        aborted transaction refuses the query: then the counts after its last
        row-writing statement stand in, unless the statement that failed
        could itself write rows (its partial writes are unknown).
        """
        key = id(conn)
        snapshot = self.snapshots.pop(key, None)
        failing = self.running_statement.pop(key, None)
        try:
            writecounters.add(self.own_writes, _read_xact_writes(conn, flush=True))
        except Exception:  # noqa: BLE001 - never break the migration over bookkeeping; count it all as foreign
            if failing is not None and writes_rows(failing):
                self.own_writes_failed = True
            else:
                writecounters.add(self.own_writes, snapshot or {})

    def note_statement(self, conn: Any, statement: str) -> None:
        self.running_statement[id(conn)] = statement

    def note_statement_done(self, conn: Any, statement: str, *, autocommit: bool) -> None:
        """After a statement: keep the transaction's counts when it may have written rows."""
        self.running_statement.pop(id(conn), None)
        if autocommit or not writes_rows(statement):
            return
        try:
            self.snapshots[id(conn)] = _read_xact_writes(conn, flush=False)
        except Exception:  # noqa: BLE001 - bookkeeping only
            self.own_writes_failed = True


_NO_ROW_WRITES = frozenset(
    (
        *("CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "SET", "RESET", "SHOW", "VACUUM", "ANALYZE"),
        *("REINDEX", "CLUSTER", "LOCK", "TRUNCATE", "REFRESH", "DISCARD", "BEGIN", "COMMIT", "ROLLBACK"),
        *("SAVEPOINT", "RELEASE"),
    )
)
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(\w+)", re.S)


_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>(?:\"(?:[^\"]|\"\")+\"|[\w$]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[\w$]+))?)",
    re.I,
)


def concurrent_index(statement: str) -> str | None:
    """The index a ``CREATE INDEX CONCURRENTLY`` builds, as written (None for any other statement)."""
    match = _CONCURRENT_INDEX.match(statement)
    return match.group("name") if match and match.group("name").upper() != "ON" else None


def writes_rows(statement: str) -> bool:
    """Whether ``statement`` may write table rows (INSERT, UPDATE, DELETE, COPY, SELECT of a function...)."""
    match = _FIRST_WORD.match(statement)
    return match is None or match.group(1).upper() not in _NO_ROW_WRITES


def _read_xact_writes(conn: Any, *, flush: bool) -> dict[str, dict[str, int]]:
    """This backend's not yet published write counts per table, on the connection's own DBAPI cursor."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(pg.XACT_WRITES_SQL)
        rows = cursor.fetchall()
        if flush and (conn.dialect.server_version_info or (0,)) >= (15,):
            cursor.execute("SELECT pg_stat_force_next_flush()")
    finally:
        cursor.close()
    return {
        identifiers.label(r[0], r[1]): {"n_tup_ins": int(r[2]), "n_tup_upd": int(r[3]), "n_tup_del": int(r[4])}
        for r in rows
    }


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def observing(
    watch: CommitWatch, *, application: str, lock_timeout: str, concurrent_lock_timeout: str
) -> Iterator[None]:
    """While inside: every SQLAlchemy engine in this process reports to ``watch`` and is marked as ours.

    A ``CREATE INDEX CONCURRENTLY`` runs under ``concurrent_lock_timeout``
    instead: it waits for every older transaction of the database to end, which
    is not a table lock an application holds for long.
    """
    settings = (f"SET application_name TO {_quote(application)}", f"SET lock_timeout TO {_quote(lock_timeout)}")

    def on_pool_connect(dbapi_connection: Any, _record: Any) -> None:
        try:
            cursor = dbapi_connection.cursor()
            try:
                for statement in settings:
                    cursor.execute(statement)
            finally:
                cursor.close()
            dbapi_connection.commit()
            watch.sessions += 1
        except Exception:  # noqa: BLE001 - not PostgreSQL, or refused: the session goes unmarked
            watch.unmarked_sessions += 1

    def on_commit(conn: Connection) -> None:
        watch.commits += 1
        watch.capture_own_writes(conn)
        if watch.after_commit is not None:
            with contextlib.suppress(Exception):  # bookkeeping never breaks the migration
                watch.after_commit(watch)

    def on_rollback(conn: Connection) -> None:
        watch.capture_own_writes(conn)  # an aborted transaction refuses the query: own writes incomplete

    def on_options(_conn: Connection, opts: dict[str, Any]) -> None:
        if str(opts.get("isolation_level", "")).upper() == "AUTOCOMMIT":
            watch.autocommit = True

    def autocommit(conn: Connection) -> bool:
        return str(conn.get_execution_options().get("isolation_level", "")).upper() == "AUTOCOMMIT"

    def set_lock_timeout(conn: Connection, value: str) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(f"SET lock_timeout TO {_quote(value)}")
        finally:
            cursor.close()

    def on_execute(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        watch.observed = True
        if not autocommit(conn):
            watch.note_statement(conn, statement)
            return
        watch.autocommit_writes = watch.autocommit_writes or writes_rows(statement)
        index = concurrent_index(statement)
        if index:
            watch.concurrent_running = index
            watch.concurrent_indexes.append(index)
            set_lock_timeout(conn, concurrent_lock_timeout)

    def on_executed(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if watch.concurrent_running and autocommit(conn):
            watch.concurrent_running = None
            set_lock_timeout(conn, lock_timeout)
        watch.note_statement_done(conn, statement, autocommit=autocommit(conn))

    listeners: list[tuple[Any, str, Callable[..., Any]]] = [
        (Pool, "connect", on_pool_connect),
        (Engine, "commit", on_commit),
        (Engine, "rollback", on_rollback),
        (Engine, "set_connection_execution_options", on_options),
        (Engine, "before_cursor_execute", on_execute),
        (Engine, "after_cursor_execute", on_executed),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
