"""The S3 server of the test bed supports what the backup step relies on.

A backup streams the dump as a multipart upload it drives itself, and on any
failure aborts it so no complete-looking object is left; tests of the product
then assert "no object, no open upload". These tests prove the server really
implements those calls (so such assertions are not vacuous), checks
signatures, and keeps its data across a stop/start.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from testbed.s3 import S3Server

MIB = 1024 * 1024
PART = 5 * MIB  # S3's minimum size for every part but the last


def test_multipart_upload_round_trip_is_byte_identical(s3: S3Server, bucket: str) -> None:
    """A 20 MiB object uploaded as 4 parts reads back with the same SHA-256 and size."""
    client = s3.client()
    key = "runs/r1/backup.dump"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    digest, parts = hashlib.sha256(), []
    for number in range(1, 5):
        chunk = os.urandom(PART)
        digest.update(chunk)
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    assert [u["UploadId"] for u in s3.open_uploads(bucket)] == [upload]
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})

    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == 4 * PART
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    read_back = hashlib.sha256()
    for block in iter(lambda: body.read(MIB), b""):
        read_back.update(block)
    assert read_back.hexdigest() == digest.hexdigest()
    assert s3.open_uploads(bucket) == []


def test_aborted_multipart_upload_leaves_nothing(s3: S3Server, bucket: str) -> None:
    """Abort is how a failed backup cleans up: no object, and no open upload listed."""
    client = s3.client()
    key = "runs/r2/backup.dump"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for number in (1, 2):
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=os.urandom(PART))
    listed = s3.open_uploads(bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed] == [(key, upload)]  # listing works, so [] below means something

    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)

    assert s3.open_uploads(bucket) == []
    assert s3.keys(bucket) == []
    with pytest.raises(ClientError) as err:
        client.head_object(Bucket=bucket, Key=key)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _refused_put(client: object, bucket: str) -> ClientError:
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=bucket, Key="intruder", Body=b"x")  # type: ignore[attr-defined]
    return err.value


def test_wrong_secret_is_refused(s3: S3Server, bucket: str) -> None:
    """A bad secret gets 403 SignatureDoesNotMatch, the secret is not echoed, and nothing is stored."""
    error = _refused_put(s3.client(secret_key="not-the-secret"), bucket)
    assert error.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.secret_key not in str(error) and "not-the-secret" not in str(error)
    assert s3.keys(bucket) == []


def test_unknown_access_key_is_refused(s3: S3Server, bucket: str) -> None:
    """An unknown access key is refused and nothing is stored. Quirk pinned here: versitygw
    answers 404 XAdminUserNotFound where AWS answers 403 InvalidAccessKeyId, so the product
    must not recognise bad credentials by a 403 alone."""
    error = _refused_put(s3.client(access_key="AKUNKNOWN"), bucket)
    assert (error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]) in {
        (403, "InvalidAccessKeyId"),
        (403, "AccessDenied"),
        (404, "XAdminUserNotFound"),
    }
    assert s3.keys(bucket) == []


def test_stop_and_start_keep_objects(s3: S3Server, bucket: str) -> None:
    """Fault tests stop the server mid-upload: clients then fail to connect, and after
    start() the same endpoint serves the objects stored before."""
    client = s3.client()
    client.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    endpoint = s3.endpoint
    s3.stop()
    try:
        with pytest.raises(EndpointConnectionError):
            client.get_object(Bucket=bucket, Key="kept")
    finally:
        s3.start()
    assert s3.endpoint == endpoint
    assert client.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
