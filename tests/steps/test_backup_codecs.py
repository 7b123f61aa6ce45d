"""The backup's fast path (issue 18): pg_dump -Z0 compressed by zstd on the way to S3, restored
exactly; the SHA-256 is the stored object's and refuses a swapped object that zstd would decode
fine; a backup written before the codec existed (pg_dump's own gzip, no ``codec``) still restores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

from alembic_operator.api import errors
from alembic_operator.job.storage import archives

from . import checksums, location_for, make_sample, read_json, run_main, run_step, step_env
from .test_restore import _backup, _failed_migration, _restore, assert_restored

pytestmark = pytest.mark.testbed

RUN = "shop/migrations/run-1/"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _stored(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def test_the_default_backup_is_a_zstd_stream_of_an_uncompressed_archive_and_restores_exactly(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    data = _backup(database, s3, bucket, tmp_path)
    manifest = read_json(s3.client(), bucket, RUN + "manifest.json")
    stored = _stored(s3, bucket, manifest["key"])
    archive = zstandard.ZstdDecompressor().stream_reader(stored).read()
    assert manifest["codec"] == "zstd" and manifest["codecLevel"] == 1 and manifest["compression"] == "0"
    assert stored.startswith(ZSTD_MAGIC) and archive.startswith(b"PGDMP")
    assert manifest["archiveBytes"] == len(archive) > len(stored) == manifest["sizeBytes"] == data["sizeBytes"]
    assert hashlib.sha256(stored).hexdigest() == manifest["sha256"] == data["sha256"]
    assert manifest["writeStatsSettled"] is True  # nothing wrote while it ran

    _failed_migration(database)
    migrated = checksums(database)
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == 0, stderr
    assert result["data"]["sha256Verified"] is True
    assert_restored(checksums(database), before=before, migrated=migrated)


def test_a_zstd_backup_restores_by_streaming_when_the_disk_has_no_room(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path, "--compression", "zstd:9")
    assert read_json(s3.client(), bucket, RUN + "manifest.json")["codecLevel"] == 9
    _failed_migration(database)
    migrated = checksums(database)
    monkeypatch.setattr(archives, "DISK_MARGIN", 1 << 60)  # no file system has room: hash, then stream again
    code, result = run_main(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    assert_restored(checksums(database), before=before, migrated=migrated)


def test_a_table_restore_from_a_zstd_backup_brings_back_that_table_only(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM audit.comment WHERE id % 2 = 0; UPDATE project SET name = name || '!' WHERE id > 30")
    after_deletes = checksums(database)
    code, _, stderr = _restore(database, s3, bucket, tmp_path, "--table", "audit.comment")
    assert code == 0, stderr
    now = checksums(database)
    assert now["audit.comment"] == before["audit.comment"]
    assert now["public.project"] == after_deletes["public.project"] != before["public.project"]


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_a_swapped_zstd_object_that_decodes_fine_is_refused_by_its_sha256_before_anything_changes(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    _backup(database, s3, bucket, tmp_path)
    manifest = read_json(s3.client(), bucket, RUN + "manifest.json")
    archive = zstandard.ZstdDecompressor().stream_reader(_stored(s3, bucket, manifest["key"])).read()
    # the same archive re-encoded at another level: valid zstd of the same length, other bytes
    swapped = zstandard.ZstdCompressor(level=5, write_checksum=True).compress(archive)
    assert swapped != _stored(s3, bucket, manifest["key"])
    s3.client().put_object(Bucket=bucket, Key=manifest["key"], Body=swapped)
    _failed_migration(database)
    after_migration = checksums(database)
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == errors.ChecksumMismatch.exit_code, stderr
    assert "does not match its manifest" in stderr and "nothing was restored" in stderr
    assert result["changedDatabase"] is False
    assert checksums(database) == after_migration


def test_a_backup_written_before_the_codec_existed_still_restores(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """pg_dump's own gzip inside the archive and no ``codec`` in the manifest: the round-1 shape."""
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path, "--compression", "6")
    client = s3.client()
    manifest = read_json(client, bucket, RUN + "manifest.json")
    assert manifest["codec"] == "none" and manifest["compression"] == "6"
    assert _stored(s3, bucket, manifest["key"]).startswith(b"PGDMP")
    old = {k: v for k, v in manifest.items() if k not in ("codec", "codecLevel", "archiveBytes", "writeStatsSettled")}
    client.put_object(Bucket=bucket, Key=RUN + "manifest.json", Body=json.dumps(old).encode())
    _failed_migration(database)
    migrated = checksums(database)
    code, _, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == 0, stderr
    assert_restored(checksums(database), before=before, migrated=migrated)


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_a_zstd_level_out_of_range_fails_before_anything_is_written(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    code, _, _, stderr = run_step(
        ["backup", "--location", location_for(bucket), "--compression", "zstd:40"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == errors.InvalidInput.exit_code and "zstd level" in stderr
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket, Prefix=RUN)
