"""Bring a backup archive from S3 into a database, checking its SHA-256 before anything changes.

1. :func:`fetch_custom` (custom format) downloads the object once into a
   temporary file while hashing, when the local disk has room for it
   (:func:`fits_on_disk`), and compares size and SHA-256 with the manifest:
   ChecksumMismatch before the database is touched. pg_restore then reads the
   proven file: the dump crosses the network once, not twice.
   Without the room, :func:`check_stream` reads the whole object once, hashing
   (no local disk), and the load streams it a second time (below).
2. :func:`fetch_directory` (directory format) extracts the tar stream into a
   temporary directory while hashing (local disk ≈ dump size), same check.
3. :func:`load_full` / :func:`load_tables` then replay the archive — from the
   local file or directory, or by streaming the object again (the same object
   version, ``IfMatch`` its ETag, hashed again and accepted only if equal) —
   through :mod:`alembic_operator.job.database.loading`'s single transaction.
4. A full restore bound to the backup's list of chunk digests streams instead
   (:mod:`alembic_operator.job.storage.streaming`): no byte reaches pg_restore unchecked.

A zstd-coded backup (the fast path, :mod:`alembic_operator.job.storage.codecs`) is hashed as
stored and decompressed on the way: the local file holds pg_dump's archive, the stream feeds
it to pg_restore; the SHA-256 and size compared are always the stored object's.

Must not: choose tools or parse arguments (the steps do).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from alembic_operator.api import errors
from alembic_operator.job.database import (
    database_state,
    dumping,
    guarding,
    identifiers,
    loading,
    pgtools,
    postgres,
    scope,
    sequences,
    toc,
    urls,
)
from alembic_operator.job.storage import codecs, s3, streaming


@dataclass
class Archive:
    """A backup to load: its manifest, object key and the ETag that was verified."""

    manifest: dict[str, Any]
    key: str
    uri: str
    etag: str | None = None
    directory: str | None = None
    """The extracted directory (directory format), inside a temp dir the caller cleans up."""
    path: str | None = None
    """The downloaded, checked archive file (custom format), inside a temp dir the caller cleans up."""
    chunks: tuple[int, list[str]] | None = None
    """(chunk bytes, SHA-256 of each): the load streams the object (:class:`streaming.Checked`)."""
    workdir: str | None = None
    """Where a streamed load keeps the start of the archive (its table of contents)."""


class Hashing:
    """Wrap a byte iterator and hash it as it is consumed: iterate it, or ``read()`` it like a file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._pending = memoryview(b"")

    def _next(self) -> bytes | None:
        chunk = next(self._chunks, None)
        if chunk is not None:
            self.sha256.update(chunk)
            self.size += len(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._next()) is not None:
            yield chunk

    def read(self, n: int = -1) -> bytes:
        """File-like read (tarfile's stream mode); ``read()`` drains the rest."""
        out = bytearray()
        while n < 0 or len(out) < n:
            if not self._pending:
                chunk = self._next()
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
            take = len(self._pending) if n < 0 else min(n - len(out), len(self._pending))
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)


def _compare(*, archive: Archive, sha256: str, size: int) -> None:
    want_sha, want_size = archive.manifest["sha256"], archive.manifest["sizeBytes"]
    if sha256 != want_sha or size != want_size:
        raise errors.ChecksumMismatch(
            f"{archive.uri} does not match its manifest (sha256 {sha256[:12]}… vs {str(want_sha)[:12]}…, "
            f"{size} vs {want_size} bytes); nothing was restored",
            expected=want_sha,
            actual=sha256,
        )


def check_stream(*, bucket: s3.Bucket, archive: Archive) -> None:
    """Pass 1 for a custom archive: hash the whole object, remember its ETag."""
    head = bucket.head(archive.key)
    archive.etag = head.get("ETag")
    hashing = Hashing(bucket.stream(archive.key, etag=archive.etag))
    for _ in hashing:
        pass
    _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)


def fetch_directory(*, bucket: s3.Bucket, archive: Archive, workdir: str) -> None:
    """Pass 1 for a directory archive: extract while hashing into ``workdir``."""
    hashing = Hashing(bucket.stream(archive.key))
    try:
        with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
            tar.extractall(workdir, filter="data")
    except tarfile.TarError as exc:
        hashing.read()
        _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)
        raise errors.RestoreFailed(f"{archive.uri} is not a readable tar archive: {exc}") from None
    hashing.read()  # the tar end padding and anything after it count too
    _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)
    archive.directory = os.path.join(workdir, dumping.TAR_ROOT)


def download(*, bucket: s3.Bucket, archive: Archive, path: str) -> None:
    """Pass 1 into a local file (table restores need a seekable archive), hashing."""
    hashing = Hashing(bucket.stream(archive.key))
    with open(path, "wb") as fh:
        try:
            for chunk in codecs.decoded_archive(hashing, doc=archive.manifest, uri=archive.uri):
                fh.write(chunk)
        except errors.RestoreFailed:
            for _ in hashing:  # a damaged object is named by its checksum first
                pass
            _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)
            raise
    _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)


#: Room to leave free on the temp dir's file system besides the downloaded dump.
DISK_MARGIN = 256 * 1024 * 1024


def fits_on_disk(*, workdir: str, size_bytes: int) -> bool:
    """Whether ``workdir``'s file system has room for a ``size_bytes`` download plus a margin."""
    try:
        free = shutil.disk_usage(workdir).free
    except OSError:
        return False
    return free >= int(size_bytes) + DISK_MARGIN


def archive_bytes(doc: dict[str, Any]) -> int:
    """The size of pg_dump's archive once decoded: what the local file takes (zstd: ``archiveBytes``)."""
    return int(doc.get("archiveBytes") or doc["sizeBytes"])


def fetch_custom(*, bucket: s3.Bucket, archive: Archive, workdir: str) -> bool:
    """Pass 1 for a custom archive into a local file (hashing), when it fits; then the load reads
    the checked file. False (nothing downloaded) when the disk lacks room: use :func:`check_stream`."""
    if not fits_on_disk(workdir=workdir, size_bytes=archive_bytes(archive.manifest)):
        return False
    path = os.path.join(workdir, "dump.custom")
    download(bucket=bucket, archive=archive, path=path)
    archive.path = path
    return True


def _source(*, bucket: s3.Bucket, archive: Archive) -> tuple[Hashing | None, list[str]]:
    """The stored stream (custom: pass 2, hashed) or the path argument (directory, downloaded file) for pg_restore."""
    if archive.directory:
        return None, [archive.directory]
    if archive.path:
        return None, [archive.path]
    return Hashing(bucket.stream(archive.key, etag=archive.etag)), []


def load_full(
    *,
    url: urls.DatabaseURL,
    database: str | None,
    bucket: s3.Bucket,
    archive: Archive,
    tools: tuple[pgtools.Tool, pgtools.Tool],
    server_major: int,
    guard: bool,
    lock_timeout_ms: int = loading.DEFAULT_LOCK_TIMEOUT_MS,
    state_keys: tuple[str, ...] = database_state.SETTINGS_KEYS + database_state.OBJECT_KEYS,
) -> guarding.Counted | None:
    """Replace the whole database with the archive, in one transaction, database-level state included
    (``state_keys``: what is compared with the manifest's ``databaseState`` before COMMIT). With
    ``guard``, return every application table's count as the transaction saw it before COMMIT."""
    scoped = scope.of(archive.manifest)
    preamble = loading.preamble_full(
        server_major=server_major,
        scope=None if scoped is None else {"scope": scoped, "recorded": list(archive.manifest.get("schemas") or [])},
    )
    feed: Iterator[bytes | memoryview] | None
    accept: Callable[[], None]
    if archive.chunks is not None:  # checked chunk by chunk as pg_restore reads it
        checked = streaming.Checked(
            bucket.stream(archive.key, etag=archive.etag, chunk=archive.chunks[0]), archive=archive
        )
        start, feed = streaming.table_of_contents(
            archive=archive,
            tool=tools[0],
            decoded=codecs.decoded_archive(checked, doc=archive.manifest, uri=archive.uri),
        )
        sections = toc.schemas_first(restore_tool=tools[0], archive_path=start, preamble=preamble, streamed=True)
        accept = checked.finish
    else:
        hashing, args = _source(bucket=bucket, archive=archive)
        feed = None if hashing is None else codecs.decoded_archive(hashing, doc=archive.manifest, uri=archive.uri)
        sections = (
            [(preamble, args)]
            if hashing is not None  # a stream checked beforehand is read once: one pg_restore (grants last)
            else toc.schemas_first(restore_tool=tools[0], archive_path=args[-1], preamble=preamble)
        )

        def accept() -> None:
            if hashing is not None:
                _compare(archive=archive, sha256=hashing.sha256.hexdigest(), size=hashing.size)

    return loading.load(
        url=url,
        database=database,
        restore_tool=tools[0],
        psql_tool=tools[1],
        sections=sections,
        feed=feed,
        accept=accept,
        guard_sql=(guarding.count_guard(expected=guarded_counts(archive.manifest), count_all=True) if guard else "")
        + sequences.KEEP_HIGHER
        + database_state.restore_sql(archive.manifest.get("databaseState"), keys=state_keys),
        lock_timeout_ms=lock_timeout_ms,
    )


def guarded_counts(doc: dict[str, Any]) -> dict[str, int | None]:
    """What the in-transaction guard checks: exact counts, or only that each table exists when the
    backup recorded planner estimates (an estimate is no count to hold a restore to)."""
    exact = doc.get("rowCountMode", "exact") == "exact"
    return {t: (int(n) if exact else None) for t, n in doc["tables"].items()}


def load_tables(
    *,
    url: urls.DatabaseURL,
    database: str | None,
    archive_path: str,
    tables: list[str],
    tools: tuple[pgtools.Tool, pgtools.Tool],
    expected: dict[str, int | None],
    lock_timeout_ms: int = loading.DEFAULT_LOCK_TIMEOUT_MS,
) -> list[str]:
    """Restore only ``tables`` (labels): existing ones are emptied and refilled with the
    archive's data, their user triggers off meanwhile (no trigger fires; each is put back as it
    was); missing ones are recreated (definition and data, without indexes or
    constraints: pg_restore -t restores the table alone). Returns the tables recreated."""
    with postgres.connect(url=url, database=database) as conn:
        present = {identifiers.label(s, t) for s, t in postgres.user_tables(conn)}
    existing = [t for t in tables if t in present]
    sections: list[tuple[str, list[str]]] = []
    first_sql = loading.preamble_tables(tables=[identifiers.parse(t) for t in existing])
    for table in tables:
        schema, name = identifiers.parse(table)
        args = ["-n", schema, "-t", name] + (["--data-only"] if table in existing else []) + [archive_path]
        sections.append((first_sql, args))
        first_sql = ""
    loading.load(
        url=url,
        database=database,
        restore_tool=tools[0],
        psql_tool=tools[1],
        sections=sections,
        feed=None,
        accept=lambda: None,
        guard_sql=(loading.TRIGGERS_BACK if existing else "") + guarding.count_guard(expected=expected),
        lock_timeout_ms=lock_timeout_ms,
    )
    return [t for t in tables if t not in present]


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="alembic-operator-restore-")
