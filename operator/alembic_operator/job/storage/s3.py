"""S3, the only place backups live: settings from the environment, a client, and streaming.

Must not: read a whole dump into memory, leave an open multipart upload or an
object that looks complete after a failure, or put a secret in a message.

1. :func:`settings_from_env` reads S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE,
   S3_SSE, S3_SSE_KMS_KEY_ID, S3_EXPECTED_BUCKET_OWNER (credentials stay with
   botocore's standard AWS_* chain); :mod:`.s3_options` applies the last three.
2. :func:`client` builds a boto3 client with short connect timeouts and few
   retries (a bad endpoint fails in seconds) and the ``when_required`` checksum
   settings that S3-compatible servers need (DESIGN "Known pitfalls").
3. :class:`MultipartWriter` is a file-like sink: bytes written to it become
   parts uploaded by a small thread pool; memory is bounded to a few parts;
   ``abort()`` on any failure, ``complete()`` only after the producer succeeded.
4. :func:`alembic_operator.job.storage.parts.part_size` picks a part size so a dump of ``pg_database_size`` × 1.5
   fits well within the 10,000-part limit.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from alembic_operator.api import errors
from alembic_operator.job.storage import parts, s3_options

log = logging.getLogger(__name__)
# botocore logs "Found credentials in environment variables" at INFO: noise on a step's stderr.
for _name in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Settings:
    """How to reach S3; credentials are botocore's (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."""

    endpoint: str | None = None
    """Custom endpoint URL (MinIO-like servers); None means AWS."""
    region: str = "us-east-1"
    force_path_style: bool = False
    sse: str | None = None
    """ServerSideEncryption value sent on every put and multipart create (e.g. AES256)."""
    sse_kms_key_id: str | None = None
    """SSEKMSKeyId sent with ``aws:kms`` encryption (None: the bucket's default key)."""
    expected_bucket_owner: str | None = None
    """AWS account id every request requires of the bucket's owner."""
    connect_timeout: float = 3.0
    """Seconds to wait for a TCP connection."""
    read_timeout: float = 60.0
    """Seconds to wait for a response byte."""
    max_attempts: int = 2
    """Total attempts per request, including the first."""


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Read the S3_* variables; InvalidInput for a malformed value."""
    env = os.environ if environ is None else environ
    endpoint = (env.get("S3_ENDPOINT") or "").strip() or None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise errors.InvalidInput(f"S3_ENDPOINT must start with http:// or https://, not {endpoint[:40]!r}")
    raw_style = (env.get("S3_FORCE_PATH_STYLE") or "false").strip().lower()
    if raw_style not in ("true", "false", "1", "0", "yes", "no"):
        raise errors.InvalidInput(f"S3_FORCE_PATH_STYLE must be true or false, not {raw_style!r}")
    return Settings(
        endpoint=endpoint,
        region=(env.get("S3_REGION") or "us-east-1").strip(),
        force_path_style=raw_style in ("true", "1", "yes"),
        sse=(env.get("S3_SSE") or "").strip() or None,
        sse_kms_key_id=(env.get("S3_SSE_KMS_KEY_ID") or "").strip() or None,
        expected_bucket_owner=(env.get("S3_EXPECTED_BUCKET_OWNER") or "").strip() or None,
    )


def client(*, settings: Settings) -> Any:
    """A boto3 S3 client that fails fast on a dead endpoint and skips optional checksums."""
    config = botocore.config.Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path" if settings.force_path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=parts.IN_FLIGHT + 4,
    )
    s3 = boto3.session.Session().client("s3", endpoint_url=settings.endpoint, config=config)
    s3_options.bind_expected_owner(s3, owner=settings.expected_bucket_owner)
    return s3


def describe(exc: BaseException, *, bucket: str, key: str | None = None, endpoint: str | None = None) -> str:
    """One line naming what S3 refused, with no secret in it."""
    where = f"s3://{bucket}/{key}" if key else f"bucket {bucket!r}"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
        code = str(err.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and key is None):
            return f"S3 bucket {bucket!r} does not exist"
        if code in ("NoSuchKey", "404", "NotFound"):
            return f"{where} does not exist"
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AuthorizationHeaderMalformed",
            "InvalidToken",
            "ExpiredToken",
        ):
            return f"S3 rejected the credentials ({code}) for {where}"
        if code in ("AccessDenied", "403", "Forbidden"):
            return f"S3 denied access to {where} (check the credentials and bucket policy)"
        return f"S3 error {code or status} on {where}: {err.get('Message') or 'no message'}"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(
        exc,
        (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
        ),
    ):
        return f"cannot reach S3 endpoint {endpoint or 'AWS'}: {type(exc).__name__}"
    return f"S3 request on {where} failed: {type(exc).__name__}"


S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def is_not_found(exc: BaseException) -> bool:
    """Whether a ClientError means the object (or bucket) is absent."""
    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    return str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")


class Bucket:
    """One bucket through one client; every failure becomes :class:`errors.StorageError`."""

    def __init__(self, *, settings: Settings, bucket: str) -> None:
        self.settings = settings
        self.name = bucket
        self.client = client(settings=settings)

    def _fail(self, exc: BaseException, key: str | None = None) -> errors.StorageError:
        return errors.StorageError(describe(exc, bucket=self.name, key=key, endpoint=self.settings.endpoint))

    def _sse(self) -> dict[str, str]:
        return s3_options.encryption(sse=self.settings.sse, kms_key_id=self.settings.sse_kms_key_id)

    def check(self) -> None:
        """Fail fast if the bucket is missing or the credentials are wrong."""
        try:
            self.client.head_bucket(Bucket=self.name)
        except S3_ERRORS as exc:
            raise self._fail(exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.name, Key=key)
        except S3_ERRORS as exc:
            if is_not_found(exc):
                return False
            raise self._fail(exc, key) from None
        return True

    def head(self, key: str) -> dict[str, Any]:
        try:
            return dict(self.client.head_object(Bucket=self.name, Key=key))
        except S3_ERRORS as exc:
            raise self._fail(exc, key) from None

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, indent=1, sort_keys=True, default=str).encode()
        try:
            self.client.put_object(Bucket=self.name, Key=key, Body=body, ContentType="application/json", **self._sse())
        except S3_ERRORS as exc:
            raise self._fail(exc, key) from None

    def get_json(self, key: str) -> Any:
        """The JSON document at ``key``; StorageError when absent or unreadable."""
        try:
            body = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        except S3_ERRORS as exc:
            raise self._fail(exc, key) from None
        try:
            return json.loads(body)
        except ValueError:
            raise errors.StorageError(f"s3://{self.name}/{key} is not valid JSON") from None

    def stream(self, key: str, *, etag: str | None = None, chunk: int = parts.MiB) -> Iterator[bytes]:
        """Yield the object's bytes; with ``etag``, only that exact version (IfMatch)."""
        extra = {"IfMatch": etag} if etag else {}
        try:
            body = self.client.get_object(Bucket=self.name, Key=key, **extra)["Body"]
            while True:
                data = body.read(chunk)
                if not data:
                    return
                yield data
        except S3_ERRORS as exc:
            raise self._fail(exc, key) from None

    def list_folders(self, prefix: str) -> list[str]:
        """Immediate sub-folders of ``prefix`` (as prefixes ending with '/')."""
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except S3_ERRORS as exc:
            raise self._fail(exc, prefix) from None
        return found

    def delete_folder(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (and abort its open uploads); return objects deleted."""
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.name, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
            uploads = self.client.list_multipart_uploads(Bucket=self.name, Prefix=prefix).get("Uploads", [])
            for up in uploads:
                self.client.abort_multipart_upload(Bucket=self.name, Key=up["Key"], UploadId=up["UploadId"])
        except S3_ERRORS as exc:
            raise self._fail(exc, prefix) from None
        return deleted

    def multipart(self, key: str, *, part_bytes: int) -> MultipartWriter:
        """Start a multipart upload at ``key`` (this also proves the bucket is writable)."""
        try:
            upload = self.client.create_multipart_upload(
                Bucket=self.name, Key=key, ChecksumAlgorithm=s3_options.CHECKSUM_ALGORITHM, **self._sse()
            )
        except S3_ERRORS as exc:
            raise self._fail(exc, key) from None
        writer = MultipartWriter(bucket=self, key=key, upload_id=upload["UploadId"], part_bytes=part_bytes)
        writer.part_checksums = s3_options.server_checks_parts(upload)
        return writer


class MultipartWriter:
    """A write-only file object that uploads parts as they fill; SHA-256 and size on the fly.

    Not thread-safe for writers (one producer), uploads run on a small pool; each
    upload thread also hashes its part's chunks (:data:`parts.CHUNK`; ``part_bytes`` is whole chunks).
    Nothing becomes a visible object until :meth:`complete`; :meth:`abort`
    removes every uploaded part. Memory: at most :func:`parts.in_flight` parts
    uploading plus the one being filled.
    """

    def __init__(self, *, bucket: Bucket, key: str, upload_id: str, part_bytes: int) -> None:
        if part_bytes <= 0 or part_bytes % parts.CHUNK:
            raise ValueError(f"a part must be whole {parts.CHUNK}-byte chunks, not {part_bytes} bytes")
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self.part_bytes = part_bytes
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        slots = parts.in_flight(part_bytes=part_bytes)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="s3-part")
        self._slots = threading.BoundedSemaphore(slots)
        self._futures: list[concurrent.futures.Future[tuple[dict[str, Any], list[str]]]] = []
        #: The hex SHA-256 of each chunk (:data:`parts.CHUNK`) of the object, in order (set by :meth:`complete`).
        self.chunk_sha256: list[str] = []
        self._closed = False
        #: Send each part's ChecksumSHA256 (the server took the upload's checksum algorithm).
        self.part_checksums = False

    # file-like API for tarfile and shutil
    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a finished multipart upload")
        self.sha256.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= self.part_bytes:
            chunk = bytes(self._buffer[: self.part_bytes])
            del self._buffer[: self.part_bytes]
            self._submit(chunk)
        return len(data)

    def flush(self) -> None:
        """Parts go up when full; nothing to do until :meth:`complete`."""

    def _submit(self, chunk: bytes) -> None:
        self._raise_failed()
        self._slots.acquire()  # back-pressure: the producer waits, memory stays bounded
        number = len(self._futures) + 1
        future = self._pool.submit(self._upload, number, chunk)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)

    def _upload(self, number: int, chunk: bytes) -> tuple[dict[str, Any], list[str]]:
        view = memoryview(chunk)
        digests = [hashlib.sha256(view[i : i + parts.CHUNK]).hexdigest() for i in range(0, len(chunk), parts.CHUNK)]
        checksum = {"ChecksumSHA256": s3_options.part_checksum(chunk)} if self.part_checksums else {}
        response = self.bucket.client.upload_part(
            Bucket=self.bucket.name, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=chunk, **checksum
        )
        return {"PartNumber": number, "ETag": response["ETag"], **checksum}, digests

    def _raise_failed(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                exc = future.exception()
                assert exc is not None
                raise self.bucket._fail(exc, self.key)

    def complete(self) -> str:
        """Upload the last part and make the object visible; return its hex SHA-256."""
        if self._buffer or not self._futures:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        uploaded = []
        chunks: list[str] = []
        for future in self._futures:
            try:
                part, digests = future.result()
            except S3_ERRORS as exc:
                raise self.bucket._fail(exc, self.key) from None
            uploaded.append(part)
            chunks += digests
        if len(uploaded) > parts.MAX_PARTS:
            raise errors.BackupFailed(f"the dump needed {len(uploaded)} parts, more than S3's {parts.MAX_PARTS}")
        try:
            self.bucket.client.complete_multipart_upload(
                Bucket=self.bucket.name, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": uploaded}
            )
        except S3_ERRORS as exc:
            raise self.bucket._fail(exc, self.key) from None
        finally:
            self._closed = True
            self._pool.shutdown(wait=True)
        self.chunk_sha256 = chunks
        return self.sha256.hexdigest()

    def abort(self) -> None:
        """Drop every part; best effort (logged), since it runs while another error propagates."""
        self._closed = True
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        try:
            self.bucket.client.abort_multipart_upload(Bucket=self.bucket.name, Key=self.key, UploadId=self.upload_id)
        except S3_ERRORS as exc:
            log.warning(
                "could not abort multipart upload of %s: %s",
                self.key,
                describe(exc, bucket=self.bucket.name, key=self.key),
            )
