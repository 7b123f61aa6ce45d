"""The backup's stream codec (job/storage/codecs.py): what --compression selects, and a zstd
stream that decodes to exactly what went in — or is refused, never silently shortened."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import zstandard

from alembic_operator.api import errors
from alembic_operator.job.storage import codecs


@pytest.mark.parametrize(
    ("fmt", "compression", "expected"),
    [
        ("custom", None, codecs.Choice(pg_dump_compression="0", codec="zstd", level=codecs.DEFAULT_LEVEL)),
        ("custom", "zstd", codecs.Choice(pg_dump_compression="0", codec="zstd", level=codecs.DEFAULT_LEVEL)),
        ("custom", "zstd:7", codecs.Choice(pg_dump_compression="0", codec="zstd", level=7)),
        ("custom", "gzip:6", codecs.Choice(pg_dump_compression="gzip:6", codec="none")),
        ("custom", "0", codecs.Choice(pg_dump_compression="0", codec="none")),
        ("custom", "lz4:1", codecs.Choice(pg_dump_compression="lz4:1", codec="none")),
        ("directory", None, codecs.Choice(pg_dump_compression=None, codec="none")),
        ("directory", "zstd:3", codecs.Choice(pg_dump_compression="zstd:3", codec="none")),
    ],
)
def test_compression_selects_the_fast_path_for_zstd_and_by_default_for_the_custom_format(
    fmt: str, compression: str | None, expected: codecs.Choice
) -> None:
    assert codecs.choose(fmt=fmt, compression=compression) == expected


def test_a_zstd_level_libzstd_does_not_have_is_invalid_input() -> None:
    with pytest.raises(errors.InvalidInput, match="zstd level"):
        codecs.choose(fmt="custom", compression="zstd:99")


def _encode(data: bytes, *, level: int = 1) -> bytes:
    out = io.BytesIO()
    sink = codecs.sink(codecs.Choice(pg_dump_compression="0", codec="zstd", level=level), into=out)
    for start in range(0, len(data), 100_000):
        sink.write(data[start : start + 100_000])
    sink.close()
    assert sink.archive_bytes == len(data)
    return out.getvalue()


def _chunks(data: bytes, size: int = 65_536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


DATA = b"".join(b"row %d,some text that repeats\n" % i for i in range(200_000)) + os.urandom(300_000)


def test_zstd_stream_decodes_to_exactly_the_archive_and_is_smaller() -> None:
    stored = _encode(DATA)
    assert len(stored) < len(DATA) // 3
    assert b"".join(codecs.decoded(_chunks(stored), codec="zstd", uri="s3://b/k")) == DATA


def test_no_codec_passes_the_bytes_as_they_are() -> None:
    assert b"".join(codecs.decoded(_chunks(DATA), codec=None, uri="s3://b/k")) == DATA
    assert codecs.codec_of({"sizeBytes": 1}) == "none"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "decodes to"),
        (lambda b: b + b, "decodes to"),
        (lambda b: b + b"PGDMP", "not a readable zstd stream"),
        (lambda b: b"PGDMP" + b, "not a readable zstd stream"),
        (lambda b: b[:-6] + bytes([b[-6] ^ 0xFF]) + b[-5:], "not a readable zstd stream"),
    ],
)
def test_a_damaged_zstd_stream_is_refused_not_shortened(damage: object, message: str) -> None:
    stored = damage(_encode(DATA))  # type: ignore[operator]
    doc = {"codec": "zstd", "archiveBytes": len(DATA)}
    with pytest.raises(errors.RestoreFailed, match=message):
        b"".join(codecs.decoded_archive(_chunks(stored), doc=doc, uri="s3://b/k"))


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(errors.RestoreFailed, match="codec 'brotli'"):
        list(codecs.decoded([b"x"], codec="brotli", uri="s3://b/k"))


def test_one_decoded_piece_stays_small_even_for_very_compressible_data() -> None:
    stored = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(b"\0" * (64 * 1024 * 1024))
    pieces = list(codecs.decoded([stored], codec="zstd", uri="s3://b/k"))
    assert sum(map(len, pieces)) == 64 * 1024 * 1024
    assert max(map(len, pieces)) <= codecs.CHUNK


def test_the_cpu_budget_follows_a_cgroup_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert codecs.cpu_budget(cgroup_cpu_max=str(cpu_max)) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert codecs.cpu_budget(cgroup_cpu_max=str(cpu_max)) == len(os.sched_getaffinity(0))
    assert 2 <= codecs.threads() <= codecs.MAX_THREADS
