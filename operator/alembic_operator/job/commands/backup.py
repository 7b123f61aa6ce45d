"""Back the database up to S3 with pg_dump, recording size, SHA-256 and row counts.

1. Preflight, before any byte moves: the location parses, the database
   answers (server version), a pg_dump of the server's major (or newer) is
   found, the bucket exists and takes a multipart upload.
2. The write counters are read once they settle, just BEFORE the snapshot
   (a write racing it then counts as foreign later, never as backed up; see
   :mod:`alembic_operator.job.checks.writecounters`). One REPEATABLE READ transaction
   exports its snapshot; the Alembic revision and the row count of every
   application table are read in it, and pg_dump runs with ``--snapshot``
   while it stays open: the counts describe exactly the dumped rows.
3. The dump streams into the multipart upload (see :mod:`alembic_operator.job.database.dumping`);
   any failure aborts the upload, so no object that looks complete remains.
4. ``--verify checksum`` (the default) reads the object back whole and
   compares its SHA-256 and size with what was streamed; manifest.json is
   written only after that (the dump object is complete and reads back).
5. ``--verify restore`` restores the dump into a scratch database and compares
   the counts; it replays the database-level state too (settings, role settings,
   comment, default privileges, publications: not the owner or ACL, which a
   scratch database cannot share), so it fails where the real restore would;
   the verdict goes into the manifest.
6. Retention deletes older sibling run folders, only now that this backup is good.

A folder that already holds a manifest is refused (BackupFailed, nothing
written): this step never adopts a manifest it did not write, and never
replaces the backup a restore may need.

The manifest (version 2, :mod:`alembic_operator.job.storage.manifest`) records
the database-level state pg_dump leaves out (``databaseState``, see
:mod:`alembic_operator.job.database.database_state`) and the database's
identity (server ``system_identifier``, database name), so a restore can
refuse a backup of another database.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors, location, results
from alembic_operator.job.checks import rowcounts
from alembic_operator.job.database import (
    database_state,
    dumping,
    identifiers,
    owners,
    pgtools,
    postgres,
    roles,
    scope,
    snapshot_counts,
    tls,
    urls,
)
from alembic_operator.job.storage import archives, codecs, manifest, parts, retention, s3

HELP = """Back the database up to S3 with pg_dump, recording size, SHA-256 and row counts.

Reads DATABASE_URL and S3_* / AWS_* from the environment. The dump and
manifest.json go into the run folder given by --location.
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--location",
        default=os.environ.get(location.ENV),
        help=f"run folder s3://BUCKET/PREFIX/RUN/ (default ${location.ENV})",
    )
    parser.add_argument(
        "--format",
        choices=("custom", "directory"),
        default="custom",
        help="custom: streamed, no local disk (default); directory: pg_dump -Fd -j N in a "
        "temp dir (uses local disk), uploaded as a tar",
    )
    parser.add_argument(
        "--schema",
        action="append",
        default=[],
        metavar="NAME",
        help="the application's schema (exact name, repeatable): the backup holds only these and their "
        "extensions, and a restore drops only these and the schemas created since; default: the whole database",
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel pg_dump jobs for --format directory")
    parser.add_argument(
        "--compression",
        default=None,
        help="zstd[:LEVEL]: pg_dump -Z0 compressed by multi-threaded zstd on the way to S3 (custom format; the "
        "default there, level 1); anything else is passed to pg_dump --compress (e.g. 0, 6, gzip:1)",
    )
    parser.add_argument(
        "--row-counts",
        choices=("exact", "estimated"),
        default="exact",
        help="exact count(*) per table (default) or planner estimates for huge databases",
    )
    parser.add_argument(
        "--verify",
        choices=("checksum", "restore"),
        default="checksum",
        help="checksum (default): read the uploaded dump back and compare its SHA-256 before writing the "
        "manifest; restore: restore it into a scratch database and compare row counts and database-level state",
    )
    parser.add_argument(
        "--scratch-url",
        default=os.environ.get("SCRATCH_DATABASE_URL"),
        help="database to restore into for --verify restore (WIPED; default $SCRATCH_DATABASE_URL, "
        "else a temporary database created on the same server and dropped afterwards)",
    )
    parser.add_argument(
        "--retention-keep-last",
        type=int,
        default=None,
        metavar="N",
        help="after success, keep only the newest N good backups in the parent folder",
    )
    parser.add_argument(
        "--retention-max-age-seconds",
        type=float,
        default=None,
        metavar="S",
        help="after success, delete good backups older than S seconds",
    )


def _validate(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise errors.InvalidInput("--jobs must be at least 1")
    if args.retention_keep_last is not None and args.retention_keep_last < 1:
        raise errors.InvalidInput("--retention-keep-last must be at least 1")
    if args.retention_max_age_seconds is not None and args.retention_max_age_seconds <= 0:
        raise errors.InvalidInput("--retention-max-age-seconds must be positive")
    if args.compression is not None and (not args.compression.strip() or args.compression.startswith("-")):
        raise errors.InvalidInput(f"--compression {args.compression!r} is not a pg_dump compression spec")
    codecs.choose(fmt=args.format, compression=args.compression)  # InvalidInput for a zstd level out of range


def run(args: argparse.Namespace) -> results.BackupResult:
    _validate(args)
    loc = location.Location.parse(args.location)
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(url)  # a run that could never be restored over TLS must not start
    scratch = urls.DatabaseURL.parse(args.scratch_url) if args.scratch_url else None
    settings = s3.settings_from_env()
    bucket = s3.Bucket(settings=settings, bucket=loc.bucket)
    dump_key = loc.key(location.dump_name(args.format))
    manifest_key = loc.key(location.MANIFEST)
    choice = codecs.choose(fmt=args.format, compression=args.compression)

    started = datetime.now(UTC)
    clock = time.monotonic()
    with postgres.connect(url=url) as conn:
        server_version = postgres.server_version(conn)
        major = postgres.server_version_num(conn) // 10000
        tool = pgtools.pg_dump(server_major=major, url=url)
        bucket.check()
        if bucket.exists(manifest_key):
            raise errors.BackupFailed(
                f"{loc.uri(location.MANIFEST)} already exists: a backup step never adopts a manifest it did not "
                "write; nothing was written (use a new run folder)"
            )
        identity = postgres.identity(conn)
        part = parts.part_size(database_bytes=postgres.database_size(conn))
        writer = bucket.multipart(dump_key, part_bytes=part)
        # One read right before the snapshot (see snapshot_counts: whether it had settled is checked
        # while the dump streams, not waited for here).
        stats, stats_read_at = postgres.write_stats(conn), time.monotonic()
        counting: snapshot_counts.Counting | None = None
        sink = codecs.sink(choice, into=writer)
        try:
            conn.execute("SET idle_in_transaction_session_timeout = 0")
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(conn.fetchval("SELECT pg_export_snapshot()"))
            revision = postgres.alembic_revision(conn)
            counting = snapshot_counts.Counting(
                url=url, snapshot=snapshot, exact=args.row_counts == "exact", stats=stats, stats_read_at=stats_read_at
            )
            estimates = postgres.estimated_counts(conn) if args.row_counts == "estimated" else None
            level = database_state.read(conn)
            present = scope.schemas(conn)
            scoped = sorted(set(args.schema)) or None
            _check_scope(scoped, present)
            owned = owners.read(conn, schemas=scoped)
            global_roles = roles.read(conn)
            oids = {
                identifiers.label(r["schema"], r["name"]): int(r["oid"]) for r in conn.fetch(postgres.USER_TABLES_SQL)
            }
            limit = scope.dump_args(scope=scoped or [], extensions=scope.extensions(conn, scope=scoped or []))
            if args.format == "custom":
                dumping.dump_custom(
                    tool=tool,
                    url=url,
                    snapshot=snapshot,
                    compression=choice.pg_dump_compression,
                    sink=sink,
                    limit=limit,
                )
                sink.close()
            else:
                dumping.dump_directory(
                    tool=tool,
                    url=url,
                    snapshot=snapshot,
                    compression=args.compression,
                    jobs=args.jobs,
                    sink=writer,
                    limit=limit,
                )
            counts, stats_settled = counting.result()
            sha256 = writer.complete()
        except BaseException:
            writer.abort()  # a count still running is abandoned: its daemon thread ends with the step
            raise
        conn.execute("COMMIT")
    tables = {k: v for k, v in (counts if estimates is None else estimates).items() if scope.holds(k, scoped)}
    if args.verify == "checksum":
        read_back(bucket=bucket, key=dump_key, uri=f"s3://{loc.bucket}/{dump_key}", sha256=sha256, size=writer.size)
    finished = datetime.now(UTC)

    doc = manifest.build(
        fmt=args.format,
        compression=choice.pg_dump_compression,
        key=dump_key,
        size_bytes=writer.size,
        sha256=sha256,
        server_version=server_version,
        pg_dump_version=tool.version,
        revision=revision,
        database=url.redacted(),
        started_at=started,
        finished_at=finished,
        row_count_mode=args.row_counts,
        tables=tables,
        write_stats={k: v for k, v in stats.items() if scope.holds(k, scoped)},
        identity=identity,
        table_oids={k: v for k, v in oids.items() if k in tables},
    )
    doc["durationSeconds"] = round(time.monotonic() - clock, 3)
    doc.update(codecs.manifest_fields(choice, sink=sink))
    doc["chunks"] = {"bytes": parts.CHUNK, "sha256": writer.chunk_sha256}
    doc["writeStatsSettled"] = stats_settled
    doc["databaseState"] = level
    doc["owners"] = owned
    doc["roles"] = global_roles
    doc["scope"], doc["schemas"] = scoped, present
    if args.verify == "checksum":
        doc["verification"] = {"method": "checksum", "ok": True, "mismatches": []}
    bucket.put_json(manifest_key, manifest.encode(doc))
    log.info("backup of %s complete: %s (%d bytes)", url.redacted(), loc.uri(), writer.size)

    if args.verify == "restore":
        mismatches = verify_by_restore(
            url=scratch or url, create=scratch is None, bucket=bucket, loc=loc, doc=doc, server_major=major
        )
        doc["verification"] = {
            "method": "restore",
            "ok": not mismatches,
            "mismatches": [m.as_dict() for m in mismatches[: rowcounts.MAX_LISTED]],
        }
        bucket.put_json(manifest_key, manifest.encode(doc))
        if mismatches:
            raise errors.BackupFailed(
                f"restore verification failed: {rowcounts.describe_mismatches(mismatches)}",
                mismatches=[m.as_dict() for m in mismatches[: rowcounts.MAX_LISTED]],
            )

    deleted = apply_retention(
        bucket=bucket, loc=loc, keep_last=args.retention_keep_last, max_age_seconds=args.retention_max_age_seconds
    )
    data = manifest.summary(doc, uri=f"s3://{loc.bucket}/{dump_key}", manifest_uri=loc.uri(location.MANIFEST))
    if deleted:
        data["retentionDeleted"] = len(deleted)
    message = f"backed up {data['tables']} tables ({data['rows']} rows, {writer.size} bytes) to {data['uri']}"
    return results.BackupResult.model_validate({**data, "message": message})


def _check_scope(scoped: list[str] | None, present: list[str]) -> None:
    """InvalidInput naming each ``--schema`` the database does not have (a typo would back up nothing)."""
    missing = [s for s in scoped or [] if s not in present]
    if missing:
        raise errors.InvalidInput(f"--schema {', '.join(map(repr, missing))}: no such schema in the database")


def read_back(*, bucket: s3.Bucket, key: str, uri: str, sha256: str, size: int) -> None:
    """``--verify checksum``: read the uploaded object back whole and compare its SHA-256 and size with
    what was streamed; BackupFailed (no manifest written) when S3 holds other bytes."""
    try:
        archives.check_stream(
            bucket=bucket, archive=archives.Archive(manifest={"sha256": sha256, "sizeBytes": size}, key=key, uri=uri)
        )
    except errors.ChecksumMismatch as exc:
        raise errors.BackupFailed(
            f"the uploaded dump {uri} reads back differently from what was sent; no manifest was written",
            expected=exc.details.get("expected"),
            actual=exc.details.get("actual"),
        ) from None


def check_restored(*, expected: dict[str, int], actual: dict[str, int], exact: bool = True) -> list[rowcounts.Mismatch]:
    """The verdict of ``--verify restore``: every table of the manifest, same count (when the backup
    counted exactly; estimates only ask that each table is there), nothing extra."""
    if not exact:
        expected = {t: actual.get(t, -1) for t in expected}
    return rowcounts.compare_exact(expected=expected, actual=actual)


def verify_by_restore(
    *,
    url: urls.DatabaseURL,
    create: bool,
    bucket: s3.Bucket,
    loc: location.Location,
    doc: dict[str, Any],
    server_major: int,
) -> list[rowcounts.Mismatch]:
    """Restore the fresh dump (read back from S3) into a scratch database and compare counts."""
    name = f"alembic_operator_verify_{secrets.token_hex(4)}" if create else url.database
    archive = archives.Archive(manifest=doc, key=doc["key"], uri=f"s3://{loc.bucket}/{doc['key']}")
    if create:
        with postgres.connect(url=url) as admin:
            try:
                postgres.create_database(admin, name=name)
            except errors.StepError as exc:
                raise errors.BackupFailed(exc.message) from None
    try:
        with postgres.connect(url=url, database=name) as conn:
            major = postgres.server_version_num(conn) // 10000
        tools = pgtools.restore_tools(server_major=major, url=url)
        with archives.temp_dir() as tmp:
            if doc["format"] == "directory":
                archives.fetch_directory(bucket=bucket, archive=archive, workdir=tmp)
            elif not archives.fetch_custom(bucket=bucket, archive=archive, workdir=tmp):
                archives.check_stream(bucket=bucket, archive=archive)
            archives.load_full(
                url=url,
                database=name,
                bucket=bucket,
                archive=archive,
                tools=tools,
                server_major=major,
                guard=False,
                state_keys=database_state.PORTABLE_KEYS
                if scope.of(doc) is None
                else tuple(k for k in database_state.PORTABLE_KEYS if k not in database_state.OBJECT_KEYS),
            )
        with postgres.connect(url=url, database=name) as conn:
            actual = postgres.exact_counts(conn)
    finally:
        if create:
            with postgres.connect(url=url) as admin:
                postgres.drop_database(admin, name=name)
    return check_restored(expected=doc["tables"], actual=actual, exact=doc.get("rowCountMode", "exact") == "exact")


def apply_retention(
    *, bucket: s3.Bucket, loc: location.Location, keep_last: int | None, max_age_seconds: float | None
) -> list[str]:
    """Delete sibling run folders the policy selects; returns the deleted prefixes."""
    if keep_last is None and max_age_seconds is None:
        return []
    backups = []
    for prefix in bucket.list_folders(loc.parent_prefix):
        sibling = loc.sibling(prefix)
        finished = None
        if bucket.exists(sibling.key(location.MANIFEST)):
            try:
                doc = bucket.get_json(sibling.key(location.MANIFEST))
            except errors.StorageError:
                doc = None
            if manifest.is_good(doc):
                finished = manifest.parse_timestamp(doc.get("finishedAt"))
        backups.append(retention.Backup(prefix=prefix, finished_at=finished))
    doomed = retention.select_for_deletion(
        backups=backups, current=loc.prefix, now=datetime.now(UTC), keep_last=keep_last, max_age_seconds=max_age_seconds
    )
    for prefix in doomed:
        log.info("retention: deleting s3://%s/%s", loc.bucket, prefix)
        bucket.delete_folder(prefix)
    return doomed
