"""S3 options of the backup spec, on the bed's versitygw: the bucket's expected owner, SSE-KMS,
SHA-256 part checksums.

versitygw checks ``ExpectedBucketOwner`` against the bucket owner's id (its access key id)
and verifies a part's ``ChecksumSHA256`` (BadDigest), so both are tested by what the server
does; it ignores SSE, so SSE-KMS is tested by the headers that go on the wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.storage import parts, s3_options
from alembic_operator.job.storage import s3 as s3_adapter

from . import location_for, make_sample, run_step, step_env

pytestmark = [pytest.mark.testbed, pytest.mark.one_major]  # alike on every major: 15 only in make test

KEY = "shop/migrations/run-1/dump.pgdump"


def _backup(database: Any, s3: Any, bucket: str, tmp_path: Path, **env: str) -> tuple[int, Any]:
    code, result, _, _ = run_step(
        ["backup", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3, **env),
        tmp_path=tmp_path,
    )
    return code, result


def test_a_backup_checks_the_bucket_owner_on_every_request(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    make_sample(database)
    code, result = _backup(database, s3, bucket, tmp_path, S3_EXPECTED_BUCKET_OWNER="000000000000")
    assert code != 0 and result is not None
    assert f"bucket {bucket!r}" in result["message"] and "denied" in result["message"].lower(), result["message"]
    assert s3.keys(bucket) == [] and s3.open_uploads(bucket) == []
    code, result = _backup(database, s3, bucket, tmp_path, S3_EXPECTED_BUCKET_OWNER=s3.access_key)
    assert code == 0, result


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _credentials(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)


def test_every_request_carries_the_expected_owner_and_the_kms_key(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials(s3, monkeypatch)
    settings = s3_adapter.Settings(
        endpoint=s3.endpoint,
        force_path_style=True,
        sse="aws:kms",
        sse_kms_key_id="alias/backups",
        expected_bucket_owner=s3.access_key,
    )
    target = s3_adapter.Bucket(settings=settings, bucket=bucket)
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append((request.url, {k: _text(v) for k, v in request.headers.items()}))

    target.client.meta.events.register("before-send.s3", record)
    target.check()
    target.put_json("run/manifest.json", {"v": 1})
    writer = target.multipart("run/dump", part_bytes=parts.MIN_PART)
    writer.write(b"x" * (parts.MIN_PART + 10))
    writer.complete()
    assert len(sent) == 6  # head bucket, put, create, two parts, complete
    assert [h.get("x-amz-expected-bucket-owner") for _, h in sent] == [s3.access_key] * 6, sent
    writes = [h for url, h in sent if url.endswith("run/manifest.json") or url.endswith("run/dump?uploads")]
    assert len(writes) == 2
    assert all(h["x-amz-server-side-encryption"] == "aws:kms" for h in writes)
    assert all(h["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/backups" for h in writes)


def test_the_dump_goes_up_in_parts_the_server_checks_by_sha256(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    code, result = _backup(database, s3, bucket, tmp_path)
    assert code == 0, result
    head = s3.client().head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "COMPOSITE" and head["ChecksumSHA256"].endswith("-1")


def test_a_part_altered_on_the_way_is_refused_and_nothing_is_left(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials(s3, monkeypatch)
    target = s3_adapter.Bucket(settings=s3_adapter.Settings(endpoint=s3.endpoint, force_path_style=True), bucket=bucket)
    real = s3_options.part_checksum
    monkeypatch.setattr(s3_options, "part_checksum", lambda chunk: real(chunk + b"altered"))
    writer = target.multipart("run/dump", part_bytes=parts.MIN_PART)
    assert writer.part_checksums
    writer.write(b"y" * 1000)
    with pytest.raises(errors.StorageError):
        try:
            writer.complete()
        except errors.StorageError:
            writer.abort()
            raise
    assert s3.keys(bucket) == [] and s3.open_uploads(bucket) == []
