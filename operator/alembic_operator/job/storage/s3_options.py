"""What the run's spec adds to every S3 request: the bucket's expected owner, SSE-KMS, part checksums.

1. ``ExpectedBucketOwner`` (an AWS account id): S3 refuses any request on a
   bucket another account owns (a bucket name taken over after deletion, a
   typo landing in someone else's bucket). :func:`bind_expected_owner`
   registers one botocore hook, so every operation whose input takes the
   parameter carries it, not only the calls someone remembered.
2. SSE-KMS: ``ServerSideEncryption: aws:kms`` with ``SSEKMSKeyId`` on every
   put and multipart create (:func:`encryption`).
3. SHA-256 part checksums: a multipart upload is created with
   ``ChecksumAlgorithm=SHA256``; when the server answers with the algorithm
   (AWS, MinIO, versitygw do) each part carries its ``ChecksumSHA256`` and
   the server rejects a part that arrived altered (:func:`part_checksum`);
   a server that ignores the header gets plain parts.

Must not: decide where backups go or read credentials.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

#: The checksum algorithm asked for on multipart uploads.
CHECKSUM_ALGORITHM = "SHA256"


def bind_expected_owner(client: Any, *, owner: str | None) -> None:
    """Make every request of ``client`` that accepts ``ExpectedBucketOwner`` carry ``owner``."""
    if not owner:
        return

    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", owner)

    client.meta.events.register("before-parameter-build.s3", add_owner)


def encryption(*, sse: str | None, kms_key_id: str | None) -> dict[str, str]:
    """The encryption parameters of a put or a multipart create."""
    params = {"ServerSideEncryption": sse} if sse else {}
    if kms_key_id:
        params["SSEKMSKeyId"] = kms_key_id
    return params


def server_checks_parts(create_response: dict[str, Any]) -> bool:
    """Whether the server took the multipart upload's checksum algorithm (it echoes it back)."""
    return str(create_response.get("ChecksumAlgorithm") or "").upper() == CHECKSUM_ALGORITHM


def part_checksum(chunk: bytes) -> str:
    """``ChecksumSHA256`` of a part: the base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(chunk).digest()).decode()
