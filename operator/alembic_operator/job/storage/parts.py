"""How a dump is cut for S3's multipart upload: part size, parts in flight, and the chunks a restore checks.

Pure arithmetic, no I/O: :mod:`alembic_operator.job.storage.s3` uploads with it, the backup step
sizes its upload from the database's size, and a streamed restore checks pieces of :data:`CHUNK` bytes.
"""

from __future__ import annotations

import math

MiB = 1024 * 1024
#: The unit a restore checks before it feeds pg_restore: the upload records each chunk's SHA-256
#: (:attr:`MultipartWriter.chunk_sha256`), so no byte reaches pg_restore before its own check passed.
CHUNK = 8 * MiB
MIN_PART = CHUNK
#: S3's hard limits.
MAX_PARTS = 10_000
MAX_PART = 5 * 1024 * MiB
#: Parts we plan for, leaving room for a dump larger than expected.
PLANNED_PARTS = 9_000
#: A dump is rarely larger than the database; 1.5× covers -Z0 and bloat-free tables.
SIZE_FACTOR = 1.5
#: Parts uploading at once, at most; memory ≈ (in flight + 1) × part size.
IN_FLIGHT = 4
#: Small parts may use all IN_FLIGHT slots while their total stays under this budget;
#: large parts (huge databases) get 2, so memory stays at about three parts.
IN_FLIGHT_BUDGET = 64 * MiB


def in_flight(*, part_bytes: int) -> int:
    """How many parts may upload at once for this part size (2 to IN_FLIGHT)."""
    return max(2, min(IN_FLIGHT, IN_FLIGHT_BUDGET // max(1, part_bytes)))


def part_size(*, database_bytes: int) -> int:
    """A part size (bytes, whole chunks (:data:`CHUNK`), ≥ 8 MiB) so ``database_bytes × 1.5`` needs ≤ 9,000 parts.

    Whole chunks: each part's upload thread hashes its own chunks, off the dump's path."""
    expected = max(0, database_bytes) * SIZE_FACTOR
    size = max(MIN_PART, math.ceil(expected / PLANNED_PARTS))
    size = math.ceil(size / CHUNK) * CHUNK
    return min(size, MAX_PART)
