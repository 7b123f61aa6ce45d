"""A real S3 server for the tests: versitygw with its POSIX backend on loopback.

versitygw (Apache-2.0) is built from its Go module by tools/build.sh. Objects
are plain files under the data dir, so a stop/start keeps them; credentials are
random per server so a test that leaks them cannot pass by accident.
"""

from __future__ import annotations

import secrets
import signal
from pathlib import Path
from typing import Any

from testbed import netns, procs
from testbed.ports import free_port, wait_for_port
from testbed.tools import binary

START_TIMEOUT = 30.0


def client_config() -> Any:
    """botocore config for S3-compatible servers: path-style addressing, and checksums only
    when the API requires them (botocore >= 1.36 defaults break many non-AWS servers)."""
    from botocore.config import Config

    return Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )


class S3Server:
    """versitygw serving ``<workdir>/s3/data`` on a free loopback port with random credentials."""

    region = "us-east-1"

    def __init__(self) -> None:
        self.access_key: str = "AK" + secrets.token_hex(8).upper()
        self.secret_key: str = secrets.token_urlsafe(30)
        self.port: int = 0
        self.host = "127.0.0.1"
        self.workdir: Path | None = None
        self.server: procs.Server | None = None
        self._housekeeping: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None, "start() the server first"
        return self.workdir / "s3" / "data"

    def start(self, workdir: Path | None = None) -> None:
        """Start (or start again, on the same port and data) and wait until it answers signed requests."""
        if self.server is not None and self.server.alive():
            return
        if self.workdir is None:
            if workdir is None:
                raise ValueError("the first start() needs a workdir")
            self.workdir = Path(workdir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
            self.host = netns.service_host()  # the node IP inside the bed's namespace: pods reach it
        # Credentials go through the environment, not argv: `ps` must not show them.
        env = {"ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key, "VGW_REGION": self.region}
        argv = [str(binary("versitygw")), "--port", f"{self.host}:{self.port}", "--quiet", "posix", str(self.data_dir)]
        self.server = procs.start("versitygw", argv, log_dir=self.workdir, env=env)
        procs.wait_until(self._answers, START_TIMEOUT, f"versitygw on port {self.port}", server=self.server)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server, keeping its data (``signal.SIGKILL`` for a crash mid-request)."""
        if self.server is not None:
            self.server.stop(timeout=10.0, sig=sig)
            self.server = None

    def _answers(self) -> bool:
        wait_for_port(self.port, timeout=0.5, host=self.host)
        self._admin().list_buckets()
        return True

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (other credentials to test refusals)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=client_config(),
        )

    def _admin(self) -> Any:
        """One client for the bed's own bucket housekeeping (creating one costs ~0.4 s of CPU, several
        seconds on a loaded machine, and every test's bucket fixture used three). Tests get fresh ones
        from :meth:`client`, so an event hook a test adds never reaches another test."""
        if self._housekeeping is None:
            self._housekeeping = self.client()
        return self._housekeeping

    def env(self) -> dict[str, str]:
        """AWS_* variables a subprocess (a step, the AWS CLI) needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        name = name or f"bucket-{secrets.token_hex(5)}"
        self._admin().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket with all its objects and open multipart uploads."""
        client = self._admin()
        for upload in self.open_uploads(name):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        keys = self.keys(name)
        for start in range(0, len(keys), 1000):  # one DeleteObjects per 1,000 keys, not a request per key
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            result = client.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
            if result.get("Errors"):
                raise RuntimeError(f"deleting the objects of bucket {name}: {result['Errors'][:3]}")
        client.delete_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """All object keys under ``prefix``, in order."""
        paginator = self._admin().get_paginator("list_objects_v2")
        return [
            obj["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for obj in page.get("Contents", [])
        ]

    def open_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """Multipart uploads started and neither completed nor aborted."""
        return list(self._admin().list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    def __repr__(self) -> str:
        return f"S3Server(endpoint={self.endpoint!r})"
