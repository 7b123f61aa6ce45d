"""A full restore bound to the backup's chunk list streams the dump, and never feeds pg_restore an unchecked byte.

The backup records the SHA-256 of each 8 MiB chunk of the stored object and reports the digest of that
list; a restore given the digest checks each chunk as it arrives instead of downloading the whole dump
first (issue 18: the download was 0.65 s of the restore's 1 GB overhead). Whoever can write the bucket
must still get nothing past it: a changed chunk stops the restore with the database proven unchanged,
and a manifest whose list was rewritten to match is refused before anything is touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.storage import manifest, parts

from . import checksums, make_sample, read_json
from .test_restore_binding import _backup, _restore

pytestmark = pytest.mark.testbed

RUN = "shop/migrations/run-1/"


def _big_backup(database: Any, s3: Any, bucket: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A backup stored as plain -Z0 of ~24 MB: three chunks (the result and the stored manifest)."""
    make_sample(database)
    database.execute(
        "CREATE TABLE big AS SELECT g, md5(g::text) || md5((g + 1)::text) AS t FROM generate_series(1, 300000) g"
    )
    data = _backup(database, s3, bucket, tmp_path, "--compression", "0")
    return data, read_json(s3.client(), bucket, RUN + "manifest.json")


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_the_backup_lists_each_chunks_sha256_and_reports_the_lists_digest(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data, doc = _big_backup(database, s3, bucket, tmp_path)
    stored = s3.client().get_object(Bucket=bucket, Key=doc["key"])["Body"].read()
    size = parts.CHUNK
    assert len(stored) > 2 * size and doc["chunks"]["bytes"] == size
    assert doc["chunks"]["sha256"] == [
        hashlib.sha256(stored[i : i + size]).hexdigest() for i in range(0, len(stored), size)
    ]
    assert data["chunksSha256"] == manifest.chunk_list_sha256(doc["chunks"]["sha256"])


@pytest.mark.one_major
def test_a_bound_restore_streams_and_brings_back_every_row(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    data, _ = _big_backup(database, s3, bucket, tmp_path)
    before = checksums(database)
    database.execute("DELETE FROM big WHERE g % 3 = 0; DROP TABLE audit.comment")
    code, _, stderr = _restore(
        database,
        s3,
        bucket,
        tmp_path,
        "--backup-sha256",
        data["sha256"],
        "--backup-chunks-sha256",
        data["chunksSha256"],
    )
    assert code == 0, stderr
    assert checksums(database) == before
    report = read_json(s3.client(), bucket, RUN + "restore.json")
    assert report["ok"] is True and report["checkedBy"].startswith("each chunk's SHA-256")
    assert report["tables"]["public.big"] == {"expected": 300000, "actual": 300000}


def _migrated(database: Any, s3: Any, bucket: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The big backup, then a migration that deleted a third of its rows; the state it left."""
    data, doc = _big_backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM big WHERE g % 3 = 0")
    return data, doc, checksums(database)


def _tamper(s3: Any, bucket: str, key: str, offset: int) -> bytes:
    """Flip one byte of the stored dump (whoever can write the bucket); return the new object."""
    client = s3.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[offset] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    return bytes(body)


@pytest.mark.one_major
def test_a_changed_chunk_stops_the_restore_before_pg_restore_reads_it_and_nothing_changes(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data, doc, migrated = _migrated(database, s3, bucket, tmp_path)
    _tamper(s3, bucket, doc["key"], offset=parts.CHUNK + 4096)  # inside the second chunk: rows of big
    code, result, stderr = _restore(database, s3, bucket, tmp_path, "--backup-chunks-sha256", data["chunksSha256"])
    assert code == errors.ChecksumMismatch.exit_code, stderr
    assert "chunk 2 of 3 has sha256" in result["message"], result["message"]
    assert "the database is unchanged" in result["message"] and result["changedDatabase"] is False
    assert checksums(database) == migrated  # the first chunk was restored inside the transaction, rolled back


@pytest.mark.one_major
def test_a_manifest_rewritten_to_match_a_forged_dump_is_refused_before_anything_is_touched(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data, doc, migrated = _migrated(database, s3, bucket, tmp_path)
    forged = _tamper(s3, bucket, doc["key"], offset=100)
    size = parts.CHUNK
    doc["chunks"]["sha256"] = [hashlib.sha256(forged[i : i + size]).hexdigest() for i in range(0, len(forged), size)]
    doc["sha256"] = hashlib.sha256(forged).hexdigest()
    s3.client().put_object(Bucket=bucket, Key=RUN + "manifest.json", Body=json.dumps(doc).encode())
    code, _, stderr = _restore(database, s3, bucket, tmp_path, "--backup-chunks-sha256", data["chunksSha256"])
    assert code == errors.InvalidInput.exit_code and "list of chunk digests is not the one the backup" in stderr
    assert checksums(database) == migrated
