"""The migrate step: ``alembic upgrade`` made safe to run unattended.

1. Read DATABASE_URL and the Alembic config; load the scripts; reject
   multiple heads and an unknown ``--target`` before connecting.
2. Connect (ending the sessions an earlier pod of this run left) and take the
   advisory lock for (database, version-table schema)
   on a connection of our own (:mod:`alembic_operator.job.database.locking`), waiting at
   most ``--lock-wait-seconds``.
3. Read the database's revision under the lock; reject a revision the scripts
   do not contain. Already at the target: succeed with ``noop``.
4. Fingerprint the schema, then run the upgrade with the app's own env.py,
   every session it opens marked with the run's ``application_name`` and
   ``lock_timeout`` (:mod:`alembic_operator.job.migrations.alembic_runtime`); the revision and
   fingerprint go to the run folder for a rollback by downgrade (``schema-migrate-start.json``); a
   CREATE INDEX CONCURRENTLY gets ``--concurrent-lock-timeout`` and, if it fails,
   its INVALID index is dropped (:mod:`alembic_operator.job.migrations.concurrent`).
5. On failure, decide whether anything was committed (commits seen on the
   migration's connection, the version table, the schema fingerprint) and
   raise MigrationFailed with ``changed_database`` set accordingly: the
   operator skips the restore when nothing was committed.
6. Around the upgrade, record the tables' write counters and the migration's
   own writes in the run folder (``stats-migrate-start.json``,
   ``stats-migrate-end.json``), so a restore can tell the application's
   writes from the migration's (:mod:`alembic_operator.job.checks.writecounters`). Best
   effort: without a location or S3 the migration still runs, and a later
   restore counts every write as foreign.

Must not: downgrade, stamp, or touch a database whose revision it does not know.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import time
from typing import Any

from alembic_operator.api import errors, results
from alembic_operator.job.database import fingerprint, tls, urls
from alembic_operator.job.migrations import (
    alembic_runtime,
    concurrent,
    downgrading,
    engines,
    locked,
    observing,
    revisions,
    wrapped,
)
from alembic_operator.job.migrations import stats as stats_

HELP = """Apply the pending Alembic revisions to DATABASE_URL under an advisory lock.

Reads the Alembic config (--config, default ./alembic.ini) and upgrades to
--target (default head). A second migrate of the same database and schema
waits for the first (--lock-wait-seconds). Each statement waits at most
--lock-timeout for table locks. On failure, the result says whether anything
was committed (changedDatabase).
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="alembic.ini", metavar="PATH", help="Alembic config file (default ./alembic.ini)"
    )
    parser.add_argument("--target", default="head", help="revision to upgrade to (default head)")
    parser.add_argument(
        "--lock-timeout",
        default="10s",
        metavar="DURATION",
        help="PostgreSQL lock_timeout for the migration's statements (default 10s; 0 = none)",
    )
    parser.add_argument(
        "--concurrent-lock-timeout",
        default="5min",
        metavar="DURATION",
        help="lock_timeout of CREATE INDEX CONCURRENTLY, which waits for older transactions (default 5min)",
    )
    parser.add_argument(
        "--exec",
        dest="exec_command",
        default=None,
        metavar="COMMAND",
        help="run the app's own migrate command instead of Alembic, under the lock, e.g. --exec 'flask db upgrade'",
    )
    engines.add_arguments(parser)
    parser.add_argument(
        "--lock-wait-seconds",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another migration of the same schema (default 60)",
    )


def run(args: argparse.Namespace) -> results.MigrateResult:
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(url)  # a run that could never be restored over TLS must not start
    lock_timeout = alembic_runtime.validate_lock_timeout(args.lock_timeout)
    concurrent_lock_timeout = alembic_runtime.validate_lock_timeout(args.concurrent_lock_timeout)
    if args.lock_wait_seconds < 0:
        raise errors.InvalidInput("--lock-wait-seconds must not be negative")
    config = revisions.load_config(args.config)
    script = revisions.load_scripts(config)
    revisions.resolve_target(script, args.target)  # unknown target / multiple heads: before connecting
    return asyncio.run(
        _migrate(
            url=url,
            config=config,
            script=script,
            target=args.target,
            lock_timeout=lock_timeout,
            lock_wait=args.lock_wait_seconds,
            url_env=args.url_env,
            concurrent_lock_timeout=concurrent_lock_timeout,
            flask_app=args.flask_app,
            exec_command=_exec_command(args.exec_command),
        )
    )


def _exec_command(value: str | None) -> list[str] | None:
    if value is None:
        return None
    try:
        command = shlex.split(value)
    except ValueError as exc:
        raise errors.InvalidInput(f"--exec {value!r}: {exc}") from None
    if not command:
        raise errors.InvalidInput("--exec needs a command, e.g. --exec 'myapp db upgrade'")
    return command


async def _migrate(
    *,
    url: urls.DatabaseURL,
    config: Any,
    script: Any,
    target: str,
    lock_timeout: str,
    lock_wait: float,
    url_env: str | None,
    concurrent_lock_timeout: str,
    flask_app: str | None,
    exec_command: list[str] | None = None,
) -> results.MigrateResult:
    table, schema = revisions.version_table(config)
    # Every session of ours carries the run's name, so the run's restore can end the ones a killed pod left.
    async with locked.session(url, schema=schema, lock_timeout=lock_timeout, lock_wait=lock_wait) as held:
        conn, application, waited, orphans = held.conn, held.application, held.waited, held.orphans
        current = await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        path = revisions.upgrade_path(script, current, target)
        if not path.pending:
            now = revisions.describe(current)
            return results.MigrateResult(
                message=f"database already at {now}; nothing to migrate",
                from_revision=now,
                to_revision=now,
                applied=[],
                duration_seconds=0.0,
                noop=True,
                lock_wait_seconds=waited,
                orphans_ended=orphans,
            )
        before = await fingerprint.take(conn)
        watch = observing.CommitWatch()
        stats = stats_.MigrateStats.from_env()
        await stats.record_start(conn)
        downgrading.record_schema(stats, heads=current, fingerprint=before)  # what a rollback by downgrade restores
        watch.after_commit = stats.record_progress
        started = time.monotonic()
        log.info(
            "migrating %s from %s to %s (%s)",
            url.redacted(),
            path.from_revision or "base",
            path.to_revision,
            ", ".join(path.pending),
        )
        try:
            if exec_command:
                await wrapped.run(
                    exec_command, url=url, application=application, lock_timeout=lock_timeout, url_env=url_env
                )
            else:
                await alembic_runtime.upgrade(
                    config,
                    url=url,
                    target=target,
                    lock_timeout=lock_timeout,
                    watch=watch,
                    application=application,
                    url_env=url_env,
                    concurrent_lock_timeout=concurrent_lock_timeout,
                    flask_app=flask_app,
                )
        except Exception as exc:  # noqa: BLE001 - every failure of the scripts is a MigrationFailed
            duration = time.monotonic() - started
            failure = await _failure(
                exc,
                conn=conn,
                script=script,
                path=path,
                before=before,
                watch=watch,
                table=table,
                schema=schema,
                lock_timeout=lock_timeout,
                duration=duration,
                concurrent_lock_timeout=concurrent_lock_timeout,
                application=application,
            )
            await stats.record_end(conn, watch=watch, failed=True)
            raise failure from None
        duration = time.monotonic() - started
        await stats.record_end(conn, watch=watch, failed=False)
        after = await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        applied = revisions.between(script, current, after)
        return results.MigrateResult(
            message=f"migrated from {path.from_revision or 'base'} to {revisions.describe(after)} "
            f"({len(applied)} revision{'s' if len(applied) != 1 else ''}) in {duration:.1f}s",
            from_revision=path.from_revision,
            to_revision=revisions.describe(after),
            applied=applied,
            duration_seconds=round(duration, 3),
            noop=False,
            lock_wait_seconds=waited,
            orphans_ended=orphans,
        )


async def _failure(
    exc: BaseException,
    *,
    conn: Any,
    script: Any,
    path: revisions.UpgradePath,
    before: dict[str, str],
    watch: observing.CommitWatch,
    table: str,
    schema: str | None,
    lock_timeout: str,
    duration: float,
    concurrent_lock_timeout: str,
    application: str,
) -> errors.MigrationFailed:
    """Build the MigrationFailed for ``exc``, deciding whether the database changed."""
    cause = alembic_runtime.describe_failure(exc)
    failed = watch.running or (path.pending[0] if path.pending else None)
    if watch.concurrent_running:
        # first, so the INVALID index is gone before the schema is compared
        cleanup = await concurrent.clean_up(conn, index=watch.concurrent_running, own_application=application)
        cause = f"{cleanup.describe(concurrent_lock_timeout)}; {cause}"
    elif alembic_runtime.is_lock_timeout(exc):
        cause = (
            f"waited longer than lock_timeout {lock_timeout} for a table lock "
            f"(a long transaction holds a conflicting lock); {cause}"
        )
    after: tuple[str, ...] | None
    changed_objects: list[str] | None
    try:
        after = await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        changed_objects = fingerprint.differences(before, await fingerprint.take(conn))
    except Exception:  # noqa: BLE001 - the server may be gone; decide from what we saw
        after, changed_objects = None, None
    version_changed = after is not None and set(after) != set(path.current)
    if after is None:
        # Could not look: only the commit watch can prove nothing was committed.
        changed = watch.committed or not watch.observed
    else:
        changed = version_changed or bool(changed_objects) or watch.committed
    applied = revisions.between(script, path.current, after) if after else []
    if not watch.observed and after is not None:  # nothing seen from inside (--exec): the first not applied
        failed = next((rev for rev in path.pending if rev not in applied), failed)
    now = revisions.describe(after) if after is not None else None
    head = f"migration failed in revision {failed}: {cause}" if failed else f"migration failed: {cause}"
    if not changed:
        tail = f"no changes were committed (database still at {path.from_revision or 'base'})"
    else:
        what = []
        if version_changed:
            what.append(f"database now at {now} (applied {', '.join(applied) or 'unknown'})")
        if changed_objects:
            what.append(f"schema changed ({', '.join(changed_objects)})")
        if watch.committed and not what:
            what.append("a transaction was committed" + (" in an autocommit block" if watch.autocommit else ""))
        if after is None:
            what.append("the database could not be re-read after the failure")
        tail = "changes were committed: " + "; ".join(what or ["unknown"])
    error = errors.MigrationFailed(
        f"{head}; {tail}",
        fromRevision=path.from_revision,
        toRevision=now,
        targetRevision=path.to_revision,
        applied=applied,
        failedRevision=failed,
        durationSeconds=round(duration, 3),
        sharedConnection=watch.observed,
    )
    error.changed_database = changed
    return error
