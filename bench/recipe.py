"""The common shell recipe's uploader: ``pg_dump -Fc | python -m bench.recipe BUCKET KEY``.

What people write instead of the AWS CLI's ``aws s3 cp - s3://...``: boto3's
``upload_fileobj`` from stdin (managed multipart upload, 8 MiB parts, 10
threads). No checksum, no abort on a failed producer — just the bytes.
"""

import sys

import boto3
from botocore.config import Config


def main() -> int:
    bucket, key = sys.argv[1], sys.argv[2]
    client = boto3.client(
        "s3",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    client.upload_fileobj(sys.stdin.buffer, bucket, key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
