"""The stream codec of a backup object: how the bytes stored in S3 relate to pg_dump's archive.

Two codecs, recorded in the manifest's ``codec`` (absent means ``none``):

- ``none``: the object is pg_dump's output as pg_dump wrote it — round-1 backups, pg_dump's
  own compression (``-Z gzip:6`` …), the directory format's tar. pg_restore reads it as is.
- ``zstd``: the fast path. pg_dump writes its custom archive uncompressed (``-Z0``) and this
  process compresses the stream with multi-threaded zstd (libzstd's worker threads, through the
  ``zstandard`` binding, which releases the GIL) on its way into the multipart upload. pg_dump's
  own compression runs on one core inside pg_dump and bounds the whole backup; here pg_dump only
  reads rows and zstd spreads over the pod's cores. A restore decompresses on the way to
  pg_restore (:func:`decoded`).

The SHA-256 and size in the manifest are always of the object as stored (compressed): the
restore checks them before anything is decompressed into the database.

:func:`choose` maps ``--compression`` (``spec.backup.compression``) to pg_dump's
``--compress`` and the codec: ``zstd`` / ``zstd:N`` select the fast path at level N, so does
no setting at all for the custom format (the default, level :data:`DEFAULT_LEVEL`); every other
value is pg_dump's own, as before. The directory format keeps pg_dump's compression (its
files are compressed one by one by ``pg_dump -j``, already parallel).

Must not: hash or count bytes (the writer and the readers do), or touch S3 or the database.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, cast

import zstandard

from alembic_operator.api import errors

NONE = "none"
ZSTD = "zstd"
CODECS = (NONE, ZSTD)
#: zstd level 1: on pg_dump's uncompressed archive it gives a smaller object than pg_dump's
#: default gzip (level 6) at a fraction of the CPU (bench/NOTES.md "Fast path").
DEFAULT_LEVEL = 1
#: Worker threads at most, whatever the node has: a backup shares its node with the database
#: it reads; each worker holds a job of a few MiB.
MAX_THREADS = 4
_ZSTD_SPEC = re.compile(r"^zstd(?::([0-9]+))?$")
#: Bytes read from the stored stream, and returned decoded, at a time.
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Choice:
    """What a ``--compression`` value means: pg_dump's ``--compress`` and this process's codec."""

    pg_dump_compression: str | None
    """Passed to ``pg_dump --compress`` (None: pg_dump's default)."""
    codec: str
    level: int | None = None


def choose(*, fmt: str, compression: str | None) -> Choice:
    """The codec for a backup; InvalidInput for a zstd level libzstd does not have."""
    if fmt != "custom":
        return Choice(pg_dump_compression=compression, codec=NONE)
    if compression is None:
        return Choice(pg_dump_compression="0", codec=ZSTD, level=DEFAULT_LEVEL)
    match = _ZSTD_SPEC.match(compression.strip())
    if match is None:
        return Choice(pg_dump_compression=compression, codec=NONE)
    level = int(match.group(1)) if match.group(1) else DEFAULT_LEVEL
    if not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
        raise errors.InvalidInput(
            f"--compression {compression!r}: a zstd level is 1 to {zstandard.MAX_COMPRESSION_LEVEL}"
        )
    return Choice(pg_dump_compression="0", codec=ZSTD, level=level)


def cpu_budget(*, cgroup_cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 quota (a pod's CPU limit)."""
    cores = len(os.sched_getaffinity(0))
    try:
        with open(cgroup_cpu_max, encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 file (a developer's machine): the affinity stands
    return max(1, cores)


def threads() -> int:
    """zstd worker threads for a backup: every core the pod may use, 2 to :data:`MAX_THREADS`.

    At least 2 even on one core: the workers overlap compression with this thread's reading of
    pg_dump's pipe and the upload.
    """
    return max(2, min(MAX_THREADS, cpu_budget()))


class Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class PlainSink:
    """Codec ``none``: the bytes go to ``sink`` as they are.

    ``archive_bytes`` counts what went in (pg_dump's archive), for the manifest: the disk room a
    restore needs for the decoded file.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.archive_bytes = 0

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.archive_bytes += len(data)
        return len(data)

    def close(self) -> None:
        """Nothing buffered."""


class ZstdSink(PlainSink):
    """Compresses into ``sink`` (one zstd frame, with its content checksum); :meth:`close` ends the frame."""

    def __init__(self, sink: Sink, *, level: int, workers: int) -> None:
        compressor = zstandard.ZstdCompressor(level=level, threads=workers, write_checksum=True)
        self._writer = compressor.stream_writer(cast(IO[bytes], sink), closefd=False, write_return_read=True)
        super().__init__(self._writer)

    def close(self) -> None:
        """Flush the last blocks and the frame's end into the sink (before the upload completes)."""
        self._writer.flush(zstandard.FLUSH_FRAME)


def sink(choice: Choice, *, into: Sink) -> PlainSink:
    """What pg_dump's output is written to for ``choice``: a compressor in front of ``into``, or ``into``."""
    if choice.codec == ZSTD:
        return ZstdSink(into, level=choice.level or DEFAULT_LEVEL, workers=threads())
    return PlainSink(into)


def manifest_fields(choice: Choice, *, sink: PlainSink) -> dict[str, Any]:
    """The manifest's ``codec`` (and for zstd ``codecLevel`` and ``archiveBytes``, pg_dump's archive size)."""
    if choice.codec != ZSTD:
        return {"codec": NONE}
    return {"codec": ZSTD, "codecLevel": choice.level, "archiveBytes": sink.archive_bytes}


class _ChunkReader:
    """A ``read(n)`` file over a byte iterator (what the decompressor reads from)."""

    def __init__(self, chunks: Iterable[bytes | memoryview]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = bytes(chunk)
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
            return out
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


def decoded(
    chunks: Iterable[bytes | memoryview], *, codec: str | None, uri: str, archive_bytes: int | None = None
) -> Iterator[bytes | memoryview]:
    """pg_dump's archive from the stored bytes, :data:`CHUNK` at most at a time (memory stays flat
    however well the data compressed); RestoreFailed when it is not what the backup wrote.

    Refused: bytes that are not zstd, a failed content checksum (the frame carries one), and a
    decoded length other than ``archive_bytes`` (the manifest's; a frame cut short or followed
    by another). pg_restore never reads a silently shortened archive; the object's SHA-256 is
    still checked by the caller, before anything is committed.
    """
    if codec in (None, NONE):
        yield from chunks
        return
    if codec != ZSTD:
        raise errors.RestoreFailed(f"{uri} is stored with codec {codec!r}, which this version cannot read")
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(IO[bytes], _ChunkReader(chunks)), read_size=CHUNK, read_across_frames=True
    )
    total = 0
    try:
        while out := reader.read(CHUNK):
            total += len(out)
            yield out
    except zstandard.ZstdError as exc:
        raise errors.RestoreFailed(f"{uri} is not a readable zstd stream: {exc}") from None
    if archive_bytes is not None and total != archive_bytes:
        raise errors.RestoreFailed(
            f"{uri} decodes to {total} bytes, not the {archive_bytes} its manifest records: the object is damaged"
        )


def codec_of(doc: dict[str, Any]) -> str:
    """A manifest's codec (``none`` when absent: round-1 and pg_dump-compressed backups)."""
    return str(doc.get("codec") or NONE)


def decoded_archive(
    chunks: Iterable[bytes | memoryview], *, doc: dict[str, Any], uri: str
) -> Iterator[bytes | memoryview]:
    """:func:`decoded` as the manifest ``doc`` says (its codec and ``archiveBytes``)."""
    size = doc.get("archiveBytes")
    return decoded(chunks, codec=codec_of(doc), uri=uri, archive_bytes=int(size) if size is not None else None)
