"""A full restore that streams its dump, each chunk checked before pg_restore reads it.

The backup lists the SHA-256 of each 8 MiB chunk of the stored object in its manifest and reports
the digest of that list (:func:`alembic_operator.job.storage.manifest.chunk_list_sha256`); a restore
bound to it (:mod:`alembic_operator.job.storage.binding`) downloads nothing first: :class:`Checked`
yields the object one chunk at a time, each after its own SHA-256 matched, so pg_restore reads the
stream as it arrives and never a byte that was not checked. Only the start of the archive (its table
of contents, for the schemas-first run) goes to a local file (:func:`table_of_contents`).

Must not: touch the database or choose what to restore (:mod:`alembic_operator.job.storage.archives` loads).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from alembic_operator.api import errors
from alembic_operator.job.database import pgtools, toc
from alembic_operator.job.storage import manifest, s3

if TYPE_CHECKING:  # archives imports this module to load; the type only
    from alembic_operator.job.storage.archives import Archive


class Checked:
    """The stored object one chunk at a time, each yielded only once its SHA-256 equals the manifest's.

    A chunk that differs, one too many or one missing is a ChecksumMismatch raised before the
    chunk is yielded. :meth:`finish` checks what pg_restore did not read (it may stop before the end).
    """

    def __init__(self, pieces: Iterable[bytes], *, archive: Archive) -> None:
        assert archive.chunks is not None
        self._size, self._digests = archive.chunks
        self._archive = archive
        self._pieces = pieces
        self._index = 0
        self._chunks = self._checked()

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return self._chunks

    def _checked(self) -> Iterator[bytes | memoryview]:
        held: list[memoryview] = []
        filled = 0
        for piece in self._pieces:
            view = memoryview(piece)
            while view:
                take = min(len(view), self._size - filled)
                held.append(view[:take])
                filled += take
                view = view[take:]
                if filled == self._size:  # pieces of one chunk each are passed on without a copy
                    yield self._check(held[0] if len(held) == 1 else memoryview(b"".join(held)))
                    held, filled = [], 0
        if filled:
            yield self._check(memoryview(b"".join(held)))
        if self._index != len(self._digests):
            raise self._mismatch(f"it ends after {self._index} of the {len(self._digests)} chunks its manifest lists")

    def _check(self, chunk: memoryview) -> memoryview:
        if self._index >= len(self._digests):
            raise self._mismatch(f"it holds more than the {len(self._digests)} chunks its manifest lists")
        digest, listed = hashlib.sha256(chunk).hexdigest(), self._digests[self._index]
        if digest != listed:
            raise self._mismatch(
                f"chunk {self._index + 1} of {len(self._digests)} has sha256 {digest[:12]}…, "
                f"its manifest {listed[:12]}…"
            )
        self._index += 1
        return chunk

    def _mismatch(self, what: str) -> errors.ChecksumMismatch:
        return errors.ChecksumMismatch(
            f"{self._archive.uri} does not match its manifest: {what}; no unchecked byte reached pg_restore",
            expected=self._digests[self._index] if self._index < len(self._digests) else None,
        )

    def finish(self) -> None:
        """Check the chunks not yet read, up to the end."""
        for _ in self._chunks:
            pass


def prepare_stream(*, bucket: s3.Bucket, archive: Archive, workdir: str) -> None:
    """Set a full restore up to stream (:class:`Checked`): the object's ETag (the load reads that
    version) and its size, which must be the manifest's (ChecksumMismatch, before anything is touched)."""
    head = bucket.head(archive.key)
    archive.etag = head.get("ETag")
    size = head.get("ContentLength")
    if size is not None and int(size) != int(archive.manifest["sizeBytes"]):
        raise errors.ChecksumMismatch(
            f"{archive.uri} holds {size} bytes, its manifest {archive.manifest['sizeBytes']}; nothing was restored"
        )
    archive.chunks = manifest.chunk_digests(archive.manifest, uri=archive.uri)
    archive.workdir = workdir


#: Bytes of a streamed archive written to its start file before the first try of ``pg_restore -l``
#: (each later try waits until the file has doubled: a huge table of contents is not re-read per MiB).
TOC_STEP = 1024 * 1024


def table_of_contents(
    *, archive: Archive, tool: pgtools.Tool, decoded: Iterator[bytes | memoryview]
) -> tuple[str, Iterator[bytes | memoryview]]:
    """Write the archive's start to a file until ``pg_restore -l`` reads a whole table of contents
    from it (before anything is touched); return that file and the whole archive as a stream again."""
    assert archive.workdir is not None
    path = os.path.join(archive.workdir, "start.custom")
    written, next_try = 0, TOC_STEP
    with open(path, "wb") as start:
        for piece in decoded:
            start.write(piece)
            written += len(piece)
            if written >= next_try:
                start.flush()
                next_try = 2 * written
                if toc.listing(restore_tool=tool, archive_path=path).returncode == 0:
                    break
    return path, itertools.chain(_file_chunks(path), decoded)


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(TOC_STEP):
            yield chunk
