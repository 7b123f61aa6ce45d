"""Restore the database to exactly the backed-up state, checking the dump's SHA-256 first.

1. Preflight: the database answers, pg_restore and psql of the server's major
   exist, manifest.json and the dump exist in the run folder. Binding: the
   dump must be the one the caller names (``--backup-uri``, ``--backup-sha256``,
   from the run's status) and live in the run folder, and the manifest's
   database identity (server ``system_identifier``, database name) must be the
   target's — else InvalidInput before anything is touched, unless
   ``--allow-other-database``. The run's own orphaned migrate sessions
   (:mod:`alembic_operator.job.database.sessions`) are ended. A full restore
   refuses (RestoreFailed, ``changedDatabase: false``) naming any
   database-level state it could not put back in its transaction
   (:func:`alembic_operator.job.database.database_state.preflight`).
2. Foreign writes (safety rule 3): the tables' write counters now, against
   the backup's (``writeStats``) minus the migration's own writes
   (``stats-migrate-end.json``), say what other sessions wrote since the
   backup (:mod:`alembic_operator.job.checks.writecounters`); the figures go to
   ``stats-pre-restore.json``. With ``--on-foreign-writes hold`` any such
   write stops the step here with ForeignWritesDetected, the database
   untouched (the default); with ``restore`` it goes on and the result lists
   what was discarded.
3. The dump's size and SHA-256 are checked against the manifest before the
   database is touched (ChecksumMismatch otherwise). The download runs while
   step 2 waits for the counters to settle (until no other session can still hold
   unpublished counts, ≤ 12.4 s; at once when none is connected); a hold still wins over a mismatch.
   A full restore given ``--backup-chunks-sha256`` (the operator passes the backup's) downloads
   nothing first: it streams the dump into pg_restore, each 8 MiB chunk checked against the
   manifest's list, which that digest binds, before pg_restore reads it
   (:class:`alembic_operator.job.storage.streaming.Checked`); a chunk that differs stops the
   restore and its transaction rolls back (ChecksumMismatch, the rollback proven as in step 4; S3
   gone mid-stream is a StorageError, proven the same way, and a new attempt may pass).
4. One transaction (see :mod:`alembic_operator.job.database.loading`): every application
   schema is dropped (so what the failed migration created goes too), the
   archive's script is replayed, the row counts are checked against the
   manifest, the database-level state (settings, role settings, ACL, comment,
   default privileges, publications) is put back and compared with the
   manifest's, and only then COMMIT. Any failure rolls all of it back; a lock
   wait longer than ``--lock-timeout-seconds`` fails naming the sessions that
   hold the locks. The result says "unchanged" only when the schema
   fingerprint and row counts read after the rollback equal those read before
   (:mod:`alembic_operator.job.checks.rollback_proof`).
5. The counts written to restore.json are the guard's: every application table
   counted inside the transaction right before COMMIT, so they are the committed
   state's (a second scan after COMMIT cost 0.4 s per GB for no more proof). A
   table restore reads its tables' counts and row digests after COMMIT; there a
   missing table or a lower count is RestoreFailed naming the tables (a higher
   one is the application writing again, recorded as ``writtenSinceRestore``).
   A backup with estimated counts (``--row-counts estimated``) holds no count
   to prove: the restore checks that every table is back and says so.

``--table`` restores only those tables (emptied and refilled with the
backup's data, or recreated when missing), leaving every other table alone;
``--into-url`` restores into another database instead of DATABASE_URL.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time
from datetime import UTC, datetime

from alembic_operator.api import errors, location, results
from alembic_operator.job.checks import restore_preflight, rollback_proof, rowcounts, writecounters
from alembic_operator.job.database import (
    database_state,
    guarding,
    identifiers,
    loading,
    pgtools,
    postgres,
    roles,
    row_digests,
    scope,
    sequences,
    sessions,
    tls,
    urls,
)
from alembic_operator.job.storage import archives, binding, manifest, s3, streaming

HELP = """Restore the database to exactly the backed-up state, checking the dump's SHA-256 first.

Reads manifest.json and the dump from the run folder given by --location and
replaces the database (DATABASE_URL, or --into-url) in one transaction.
First counts what other sessions wrote since the backup (a restore discards
it): --on-foreign-writes hold (the default) stops then, changing nothing (exit code 42).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--location",
        default=os.environ.get(location.ENV),
        help=f"run folder s3://BUCKET/PREFIX/RUN/ holding the backup (default ${location.ENV})",
    )
    parser.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="[SCHEMA.]TABLE",
        help='restore only this table (repeatable; quote a name holding a dot: "my.schema".table); '
        "other tables are left untouched",
    )
    parser.add_argument(
        "--backup-uri",
        default=None,
        help="the dump this restore must use (the run's status.backup.uri); it must live in the run folder",
    )
    parser.add_argument(
        "--backup-sha256",
        default=None,
        help="the dump's SHA-256 as the backup step reported it (status.backup.sha256); the manifest must agree",
    )
    parser.add_argument(
        "--backup-chunks-sha256",
        default=None,
        help="the digest of the dump's chunk list as the backup step reported it (status.backup.chunksSha256): "
        "the manifest must agree; a full restore then streams the dump, checking each chunk before pg_restore reads it",
    )
    parser.add_argument(
        "--allow-other-database",
        action="store_true",
        help="restore even when the backup was taken from another server or database (its manifest's identity)",
    )
    parser.add_argument(
        "--lock-timeout-seconds",
        type=float,
        default=loading.DEFAULT_LOCK_TIMEOUT_MS / 1000,
        help="how long to wait for a lock another session holds before failing, naming it (default 60)",
    )
    parser.add_argument(
        "--into-url",
        default=os.environ.get("RESTORE_INTO_DATABASE_URL"),
        help="restore into this database instead of DATABASE_URL "
        "(default $RESTORE_INTO_DATABASE_URL; prefer the variable: argv is visible to ps)",
    )
    parser.add_argument(
        "--on-foreign-writes",
        choices=("hold", "restore"),
        default="hold",
        help="when other sessions wrote since the backup: hold = stop before touching the "
        "database (ForeignWritesDetected, exit code 42; the default); restore = discard them "
        "and list them in the result",
    )


def normalize_tables(names: list[str], *, known: dict[str, int]) -> list[str]:
    """``task`` → ``public.task`` (labels, see identifiers); InvalidInput for a table the backup does not hold."""
    tables: list[str] = []
    for raw in names:  # not split on commas: a name may hold one
        try:
            name = identifiers.label(*identifiers.parse(raw, default_schema=identifiers.DEFAULT_SCHEMA))
        except ValueError as exc:
            raise errors.InvalidInput(f"--table {raw!r}: {exc}") from None
        if name not in known:
            raise errors.InvalidInput(f"table {raw!r} is not in the backup")
        if name not in tables:
            tables.append(name)
    return tables


def run(args: argparse.Namespace) -> results.RestoreResult:
    try:
        return _restore(args)
    except errors.StepError as exc:
        exc.details["retryable"] = retryable(exc)
        raise


def retryable(exc: errors.StepError) -> bool:
    """Whether a new attempt may pass: the cause may go away, and the result's ``retryable`` says so.

    The server or S3 was away (DatabaseUnreachable, StorageError), or the restore's one transaction
    rolled back (:func:`alembic_operator.job.database.loading.rolled_back`). A new attempt is safe: the
    restore is atomic and checks the dump and foreign writes again. Not a checksum mismatch, a count
    mismatch after COMMIT, bad input, a missing tool or a hold for foreign writes.
    """
    if isinstance(exc, (errors.DatabaseUnreachable, errors.StorageError)):
        return True
    return isinstance(exc, errors.RestoreFailed) and exc.details.get("rolledBack") is True


def _restore(args: argparse.Namespace) -> results.RestoreResult:
    loc = location.Location.parse(args.location)
    url = urls.DatabaseURL.parse(args.into_url or os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(url)  # a run that could never be restored over TLS must not start
    if not args.lock_timeout_seconds > 0:
        raise errors.InvalidInput("--lock-timeout-seconds must be positive")
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    started = datetime.now(UTC)
    clock = time.monotonic()

    with postgres.connect(url=url) as conn:
        major = postgres.server_version_num(conn) // 10000
        target = postgres.identity(conn)
    tools = pgtools.restore_tools(server_major=major, url=url)
    bucket.check()
    manifest_uri = loc.uri(location.MANIFEST)
    if not bucket.exists(loc.key(location.MANIFEST)):
        raise errors.StorageError(f"no backup manifest at {manifest_uri}: nothing to restore from")
    doc = manifest.validate(bucket.get_json(loc.key(location.MANIFEST)), uri=manifest_uri)
    archive = archives.Archive(manifest=doc, key=doc["key"], uri=f"s3://{loc.bucket}/{doc['key']}")
    binding.check(
        loc=loc,
        doc=doc,
        archive_uri=archive.uri,
        backup_uri=args.backup_uri,
        backup_sha256=args.backup_sha256,
        backup_chunks_sha256=args.backup_chunks_sha256,
        target=target,
        allow_other_database=args.allow_other_database,
    )
    expected = {str(k): int(v) for k, v in doc["tables"].items()}
    exact = doc.get("rowCountMode", "exact") == "exact"
    tables = normalize_tables(args.table, known=expected)
    if not bucket.exists(archive.key):
        raise errors.StorageError(f"the dump {archive.uri} named by the manifest is missing")
    if not tables:
        restore_preflight.refuse_unrestorable(url=url, doc=doc)
    else:
        restore_preflight.refuse_triggers(url=url, tables=tables)
    lock_ms = max(1, round(args.lock_timeout_seconds * 1000))

    recreated: list[str] = []
    counted: guarding.Counted | None = None  # a full restore's counts, taken before COMMIT
    backed_up: dict[str, str] = {}  # a table restore's proof: each table's rows in the archive, as a digest
    with archives.temp_dir() as tmp, concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # The write counters' settle poll (seconds) overlaps the download: both end before the database
        # is touched, and a hold for foreign writes still wins over a checksum mismatch, as in sequence.
        counting = pool.submit(
            restore_preflight.check_foreign_writes,
            url=url,
            bucket=bucket,
            loc=loc,
            doc=doc,
            tables=tables,
            hold=args.on_foreign_writes == "hold",
        )
        try:
            _fetch(
                bucket=bucket, archive=archive, tables=tables, workdir=tmp, stream=args.backup_chunks_sha256 is not None
            )
        finally:
            foreign = counting.result()
        # The checksum is proven and the foreign writes counted: from here on the database may change.
        with postgres.connect(url=url) as conn:
            sessions.end_orphans(conn, application_name=sessions.migrate_application_name(loc.uri()))
            before = postgres.state(conn)
            handed_out = sequences.values(conn)
        try:
            if tables:
                source = archive.directory or os.path.join(tmp, location.DUMP_CUSTOM)
                backed_up = {
                    t: row_digests.of_archive(tool=tools[0], archive_path=source, table=identifiers.parse(t))
                    for t in tables
                }
                recreated = archives.load_tables(
                    url=url,
                    database=None,
                    archive_path=source,
                    tables=tables,
                    tools=tools,
                    expected={t: (expected[t] if exact else None) for t in tables},
                    lock_timeout_ms=lock_ms,
                )
            else:
                counted = archives.load_full(
                    url=url,
                    database=None,
                    bucket=bucket,
                    archive=archive,
                    tools=tools,
                    server_major=major,
                    guard=True,
                    lock_timeout_ms=lock_ms,
                    state_keys=database_state.SETTINGS_KEYS
                    + (database_state.OBJECT_KEYS if scope.of(doc) is None else ()),
                )
        except errors.StepError as exc:  # the load had begun: say "unchanged" only after the check
            raise rollback_proof.proven_rollback(exc, url=url, before=before) from None

    with postgres.connect(url=url) as conn:
        # a scoped restore answers for its schemas and the ones created since, not another app's
        others = set(doc.get("schemas") or []) - set(scope.of(doc) or doc.get("schemas") or [])
        counts = (
            postgres.exact_counts(conn)
            if counted is None
            else {identifiers.label(schema, table): n for (schema, table), n in counted.items()}
        )
        actual = {t: n for t, n in counts.items() if identifiers.parse(t)[0] not in others}
        restored = row_digests.of_tables(conn, tables)
        kept = [] if tables else sequences.kept(before=handed_out, after=sequences.values(conn))
        kept = [k for k in kept if identifiers.parse(k["sequence"])[0] not in others]
        role_changes = roles.changes(recorded=doc.get("roles"), current=roles.read(conn))
    differences = rowcounts.compare_exact(
        expected=expected if exact else {t: actual.get(t, -1) for t in expected}, actual=actual, only=tables or None
    )
    # The in-transaction guard already proved the counts before COMMIT; a table that grew since is the
    # application writing again (no write fence), not a bad restore: recorded, not fatal.
    grown = [m for m in differences if m.expected is not None and m.actual is not None and m.actual > m.expected]
    mismatches = [m for m in differences if m not in grown]
    busy = {m.table for m in grown}
    altered = [d for d in row_digests.compare(expected=backed_up, actual=restored) if d["table"] not in busy]
    finished = datetime.now(UTC)
    covered = tables or sorted(expected)
    report = {
        "v": 1,
        "mode": "tables" if tables else "full",
        "startedAt": manifest.timestamp(started),
        "finishedAt": manifest.timestamp(finished),
        "durationSeconds": round(time.monotonic() - clock, 3),
        "sha256": doc["sha256"],
        "sha256Verified": True,
        "checkedBy": "each chunk's SHA-256, before pg_restore read it" if archive.chunks else "the whole SHA-256",
        "database": url.redacted(),
        "recreatedTables": recreated,
        "ok": not mismatches and not altered,
        "contentMismatches": altered,
        "sequencesKept": kept,
        "rolesChanged": role_changes,
        "rowCountMode": doc.get("rowCountMode", "exact"),
        "pgRestoreVersion": tools[0].version,
        "tables": {t: {"expected": expected.get(t), "actual": actual.get(t)} for t in covered},
        "mismatches": [m.as_dict() for m in mismatches],
        "writtenSinceRestore": [m.as_dict() for m in grown],
    }
    bucket.put_json(loc.key(location.RESTORE), report)
    if mismatches:
        raise errors.RestoreFailed(
            f"restored row counts differ from the backup: {rowcounts.describe_mismatches(mismatches)}",
            mismatches=[m.as_dict() for m in mismatches[: rowcounts.MAX_LISTED]],
        )
    if altered:
        raise errors.RestoreFailed(
            "restored rows differ from the backup's (same count, other content): "
            + ", ".join(d["table"] for d in altered[: rowcounts.MAX_LISTED]),
            contentMismatches=altered[: rowcounts.MAX_LISTED],
        )
    rows = sum((expected if exact else actual).get(t, 0) for t in covered)
    message = f"restored {len(covered)} tables ({rows} rows) from {archive.uri}"
    if kept:
        message += (
            f"; {len(kept)} sequence(s) kept their current value (at or above the backup's): no id is handed out twice"
        )
    message += roles.describe(role_changes)
    if tables:
        message += "; each table's rows equal the backup's (ordered-row digest), no user trigger fired"
    if not exact:
        message += " (the backup recorded estimated row counts: every table is back, its count was not provable)"
    if foreign and foreign["rows"]:
        message += (
            f", discarding ~{foreign['rows']} rows other sessions wrote since the backup "
            f"({writecounters.describe(foreign)})"
        )
    return results.RestoreResult(
        uri=archive.uri,
        sha256_verified=True,
        tables_restored=len(covered),
        rows=rows,
        duration_seconds=report["durationSeconds"],
        restore_uri=loc.uri(location.RESTORE),
        pg_restore_version=tools[0].version,
        foreign_writes=foreign,
        sequences_kept=[results.SequenceKept.model_validate(k) for k in kept[: rowcounts.MAX_LISTED]],
        **{"rolesChanged": {k: v[: rowcounts.MAX_LISTED] for k, v in role_changes.items()}},  # extra: camelCase as sent
        message=message,
    )


def _fetch(*, bucket: s3.Bucket, archive: archives.Archive, tables: list[str], workdir: str, stream: bool) -> None:
    """Bring the archive next to pg_restore (or check it for streaming), its SHA-256 proven; or, with
    ``stream`` (the chunk list is bound), only set up the checked stream."""
    if archive.manifest["format"] == "directory":
        archives.fetch_directory(bucket=bucket, archive=archive, workdir=workdir)
    elif tables:
        archives.download(bucket=bucket, archive=archive, path=os.path.join(workdir, location.DUMP_CUSTOM))
    elif stream:
        streaming.prepare_stream(bucket=bucket, archive=archive, workdir=workdir)
    elif not archives.fetch_custom(bucket=bucket, archive=archive, workdir=workdir):
        archives.check_stream(bucket=bucket, archive=archive)  # no room on disk: stream it twice
