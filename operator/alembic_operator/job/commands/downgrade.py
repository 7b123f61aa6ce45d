"""The downgrade step: a rollback that keeps the application's writes (``rollback.method: downgrade``).

1. Read the schema record the migrate step wrote before upgrading
   (:mod:`alembic_operator.job.migrations.downgrading`) and check that the
   migration started from the backup's revision (``manifest.json``).
2. Take the migration's session: its ``application_name``, ``lock_timeout`` and
   advisory lock, the run's orphans ended (:mod:`alembic_operator.job.migrations.locked`).
3. Refuse, changing nothing, when a revision on the way down has no downgrade.
4. ``alembic downgrade <that revision>`` with the app's own env.py, as migrate
   runs its upgrade (:func:`alembic_runtime.upgrade`, direction ``downgrade``).
5. Require the database at that revision and its schema fingerprint equal to the
   recorded one; otherwise fail (SchemaMismatch): the operator restores instead.

Must not: upgrade, stamp, or end successfully with a schema other than the recorded one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from alembic_operator.api import errors, location, results
from alembic_operator.job.commands import migrate
from alembic_operator.job.database import fingerprint, urls
from alembic_operator.job.migrations import alembic_runtime, downgrading, locked, observing, revisions
from alembic_operator.job.storage import manifest, s3

HELP = """Downgrade the database to the backup's revision, keeping every write made since, and check its schema.

Runs `alembic downgrade` to the revision the migration started from (the
backup's), with the app's env.py under the migrate step's advisory lock and
--lock-timeout, then requires the schema fingerprint the migrate step recorded
(schema-migrate-start.json in --location). Refuses, changing nothing, when a
revision has no downgrade. Takes migrate's flags (--config, --url-env,
--flask-app...); --target and --exec are ignored.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    migrate.add_arguments(parser)  # the same flags, so spec.migrate.args apply to the downgrade too
    parser.add_argument(
        "--location",
        default=os.environ.get(location.ENV),
        help=f"run folder s3://BUCKET/PREFIX/RUN/ with manifest.json and the schema record (default ${location.ENV})",
    )


def run(args: argparse.Namespace) -> results.MigrateResult:
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    lock_timeout = alembic_runtime.validate_lock_timeout(args.lock_timeout)
    loc = location.Location.parse(args.location)
    config = revisions.load_config(args.config)
    script = revisions.load_scripts(config)
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    record = downgrading.read_schema(bucket, loc)
    _check_backup_revision(
        bucket, loc, record, default_table=revisions.version_table(config) == ("alembic_version", None)
    )
    if len(record.heads) > 1:
        raise errors.RevisionError(
            f"the migration started from several heads ({', '.join(record.heads)}): a downgrade goes to one revision"
        )
    return asyncio.run(
        _downgrade(
            url=url,
            config=config,
            script=script,
            record=record,
            lock_timeout=lock_timeout,
            lock_wait=args.lock_wait_seconds,
            url_env=args.url_env,
            flask_app=args.flask_app,
        )
    )


def _check_backup_revision(
    bucket: s3.Bucket, loc: location.Location, record: downgrading.SchemaRecord, *, default_table: bool
) -> None:
    """RevisionError when the migration did not start from the backup's revision (the manifest's)."""
    doc = manifest.validate(bucket.get_json(loc.key(location.MANIFEST)), uri=loc.uri(location.MANIFEST))
    started = revisions.describe(record.heads)
    # The backup reads the default version table only; with another one its revision says nothing.
    if default_table and doc.get("revision") != started:
        raise errors.RevisionError(
            f"the backup was taken at {doc.get('revision') or 'base'} but the migration started from "
            f"{started or 'base'}: a downgrade would not bring the backup's schema back"
        )


async def _downgrade(
    *,
    url: urls.DatabaseURL,
    config: Any,
    script: Any,
    record: downgrading.SchemaRecord,
    lock_timeout: str,
    lock_wait: float,
    url_env: str | None,
    flask_app: str | None,
) -> results.MigrateResult:
    table, schema = revisions.version_table(config)
    goal = revisions.describe(record.heads)
    async with locked.session(url, schema=schema, lock_timeout=lock_timeout, lock_wait=lock_wait) as held:
        conn = held.conn
        current = await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        revisions.check_known(script, current)
        missing = downgrading.missing_downgrades(script, current, record.heads)
        if missing:
            raise errors.DowngradeMissing(
                f"revision {', '.join(missing)} has no downgrade (none, pass, or it only raises): the database was "
                f"left at {revisions.describe(current)}, unchanged",
                missing=missing,
            )
        undone = revisions.between(script, record.heads, current)
        watch = observing.CommitWatch()
        started = time.monotonic()
        try:
            await alembic_runtime.upgrade(
                config,
                url=url,
                target=goal or "base",
                lock_timeout=lock_timeout,
                watch=watch,
                application=held.application,
                url_env=url_env,
                flask_app=flask_app,
                direction="downgrade",
            )
        except Exception as exc:  # noqa: BLE001 - every failure of the scripts is a DowngradeFailed
            now = await _heads_or_none(conn, table=table, schema=schema)
            where = f" of revision {watch.running}" if watch.running else ""
            at = "could not be re-read" if now is None else f"is at {revisions.describe(now) or 'base'}"
            raise errors.DowngradeFailed(
                f"the downgrade{where} failed: {alembic_runtime.describe_failure(exc)}; the database {at}",
                fromRevision=revisions.describe(current),
                toRevision=revisions.describe(now) if now is not None else None,
                failedRevision=watch.running,
            ) from None
        duration = time.monotonic() - started
        after = await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        if set(after) != set(record.heads):
            raise errors.DowngradeFailed(
                f"the downgrade ended at {revisions.describe(after) or 'base'}, not at {goal or 'base'}",
                fromRevision=revisions.describe(current),
                toRevision=revisions.describe(after),
            )
        differences = fingerprint.differences(record.fingerprint, await fingerprint.take(conn))
        if differences:
            raise errors.SchemaMismatch(
                f"downgraded to {goal or 'base'}, but the schema is not the one the migration started from "
                f"(fingerprint differs in: {', '.join(differences)})",
                fromRevision=revisions.describe(current),
                toRevision=goal,
            )
    return results.MigrateResult(
        message=f"downgraded from {revisions.describe(current) or 'base'} to {goal or 'base'} "
        f"({len(undone)} revision{'s' if len(undone) != 1 else ''} undone) in {duration:.1f}s; the schema equals "
        "the backup's (fingerprint) and every write since the backup was kept",
        from_revision=revisions.describe(current),
        to_revision=goal,
        target_revision=goal,
        applied=list(reversed(undone)),
        duration_seconds=round(duration, 3),
        noop=not undone,
        lock_wait_seconds=held.waited,
        orphans_ended=held.orphans,
    )


async def _heads_or_none(conn: Any, *, table: str, schema: str | None) -> tuple[str, ...] | None:
    """The database's revision after a failure, or None when it cannot be read (the server may be gone)."""
    try:
        return await revisions.read_database_heads(conn, table=table, schema=schema) or ()
    except Exception:  # noqa: BLE001 - the failure is reported either way
        return None
