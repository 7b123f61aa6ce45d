"""A streamed restore's chunk checks: no byte is passed on before its chunk's SHA-256 matched, and the
list itself must be the one the backup reported (tests/steps/test_restore_stream.py runs them for real)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from alembic_operator.api import errors, location
from alembic_operator.job.storage import archives, binding, manifest, parts, s3, streaming

SIZE = 16  # chunk bytes here; the upload's is parts.CHUNK


def _archive(data: bytes, size: int = SIZE) -> archives.Archive:
    digests = [hashlib.sha256(data[i : i + size]).hexdigest() for i in range(0, len(data), size)]
    doc = {"sizeBytes": len(data), "chunks": {"bytes": size, "sha256": digests}}
    return archives.Archive(
        manifest=doc, key="p/run/dump.pgdump", uri="s3://b/p/run/dump.pgdump", chunks=(size, digests)
    )


def _pieces(data: bytes, cut: int) -> list[bytes]:
    return [data[i : i + cut] for i in range(0, len(data), cut)]


DATA = bytes(range(256)) * 3  # 768 bytes: 48 chunks


@pytest.mark.parametrize("cut", [1, 7, SIZE, SIZE + 5, 100, len(DATA)])
def test_the_checked_stream_is_the_object_whatever_the_pieces_it_arrives_in(cut: int) -> None:
    checked = streaming.Checked(_pieces(DATA, cut), archive=_archive(DATA))
    assert b"".join(bytes(chunk) for chunk in checked) == DATA
    checked.finish()


def test_a_changed_byte_stops_the_stream_before_its_chunk_is_passed_on() -> None:
    forged = bytearray(DATA)
    forged[5 * SIZE + 3] ^= 1  # the sixth chunk
    passed: list[bytes] = []
    with pytest.raises(errors.ChecksumMismatch) as failed:
        for chunk in streaming.Checked(_pieces(bytes(forged), 10), archive=_archive(DATA)):
            passed.append(bytes(chunk))
    assert b"".join(passed) == DATA[: 5 * SIZE]  # the five good chunks, nothing of the changed one
    assert "chunk 6 of 48 has sha256" in failed.value.message


def test_an_object_cut_short_or_grown_is_a_mismatch() -> None:
    with pytest.raises(errors.ChecksumMismatch, match="ends after 47 of the 48 chunks"):
        list(streaming.Checked([DATA[: 47 * SIZE]], archive=_archive(DATA)))
    with pytest.raises(errors.ChecksumMismatch, match="more than the 48 chunks"):
        list(streaming.Checked([DATA + b"x"], archive=_archive(DATA)))
    with pytest.raises(errors.ChecksumMismatch, match="chunk 48 of 48 has sha256"):
        list(streaming.Checked([DATA[:-1]], archive=_archive(DATA)))


def test_finish_checks_what_pg_restore_did_not_read() -> None:
    forged = DATA[:-1] + b"\x00"
    checked = streaming.Checked([forged], archive=_archive(DATA))
    assert bytes(next(iter(checked))) == DATA[:SIZE]  # pg_restore stopped after the first chunk
    with pytest.raises(errors.ChecksumMismatch, match="chunk 48 of 48"):
        checked.finish()


def _doc(digests: list[str], size_bytes: int, chunk: int = 8) -> dict[str, Any]:
    return {"sizeBytes": size_bytes, "sha256": "ab" * 32, "chunks": {"bytes": chunk, "sha256": digests}}


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (_doc(["aa" * 32], 20), "1 chunk digests for 20 bytes of 8"),
        (_doc(["AA" * 32] * 3, 20), "not a lowercase hex SHA-256"),
        (_doc(["aa" * 31] * 3, 20), "not a lowercase hex SHA-256"),
        ({"sizeBytes": 20, "chunks": {"bytes": 0, "sha256": []}}, "'chunks' is not"),
        ({"sizeBytes": 20, "chunks": ["aa" * 32]}, "'chunks' is not"),
    ],
)
def test_a_malformed_chunk_list_is_a_storage_error_naming_it(doc: dict[str, Any], error: str) -> None:
    with pytest.raises(errors.StorageError, match=error):
        manifest.chunk_digests(doc, uri="s3://b/m.json")


def test_a_manifest_without_a_chunk_list_is_an_older_backup() -> None:
    assert manifest.chunk_digests({"sizeBytes": 20}, uri="s3://b/m.json") is None


def test_the_lists_digest_changes_with_any_digest_or_their_order() -> None:
    a, b = "aa" * 32, "bb" * 32
    digests = {manifest.chunk_list_sha256(x) for x in ([a, b], [b, a], [a], [a, b, b], [])}
    assert len(digests) == 5


LOC = location.Location.parse("s3://backups/p/run/")
URI = "s3://backups/p/run/dump.pgdump"


def _bind(doc: dict[str, Any], chunks: str | None) -> None:
    binding.check(
        loc=LOC,
        doc=doc,
        archive_uri=URI,
        backup_uri=URI,
        backup_sha256="ab" * 32,
        backup_chunks_sha256=chunks,
        target={},
        allow_other_database=True,
    )


def test_a_restore_given_the_lists_digest_accepts_only_that_list() -> None:
    digests = ["aa" * 32, "bb" * 32, "cc" * 32]
    doc = _doc(digests, 20)
    _bind(doc, manifest.chunk_list_sha256(digests))
    _bind(doc, None)  # an older caller: the restore downloads and checks the whole SHA-256
    with pytest.raises(errors.InvalidInput, match="list of chunk digests is not the one the backup reported"):
        _bind(_doc(["aa" * 32, "bb" * 32, "dd" * 32], 20), manifest.chunk_list_sha256(digests))
    with pytest.raises(errors.InvalidInput, match="list of chunk digests"):
        _bind({"sizeBytes": 20, "sha256": "ab" * 32}, manifest.chunk_list_sha256(digests))  # the list removed


@pytest.mark.parametrize("db_bytes", [0, 60 * 1024**3, 777 * 1024**3, 10 * 1024**4])
def test_a_part_is_whole_chunks_so_each_upload_thread_hashes_its_own(db_bytes: int) -> None:
    assert parts.part_size(database_bytes=db_bytes) % parts.CHUNK == 0


def test_a_writer_refuses_a_part_size_that_is_not_whole_chunks() -> None:
    with pytest.raises(ValueError, match="whole"):
        s3.MultipartWriter(bucket=None, key="k", upload_id="u", part_bytes=parts.CHUNK + parts.MiB)  # type: ignore[arg-type]
