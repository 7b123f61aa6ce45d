"""Pytest plugin for end-to-end runs: the real operator (as its own ServiceAccount), the CRD,
the operator and app images registered on the real node, and an app namespace with its Secrets.

Fixtures: ``operator`` (session, an :class:`testbed.operating.OperatorProcess`; tests may
kill and restart it) and ``app`` (per test, a :class:`testbed.apps.App` on a fresh database of
each PostgreSQL version and a fresh bucket)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import operating
from testbed.apps import App
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.s3 import S3Server


@pytest.fixture(scope="session")
def operator(cluster: Cluster, kubelet: Node, bed_dir: Path) -> Iterator[operating.OperatorProcess]:
    """The operator process, started once per session; fault tests kill and restart it."""
    operating.register_images(kubelet)
    proc = operating.OperatorProcess(cluster, bed_dir / "operator", settings=operating.TEST_SETTINGS)
    proc.workdir.mkdir(parents=True, exist_ok=True)
    proc.setup()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def app(
    cluster: Cluster, operator: operating.OperatorProcess, namespace: str, database: Any, s3: S3Server, bucket: str
) -> App:
    """A namespace with Secrets for a fresh database (on each PostgreSQL version) and a fresh bucket."""
    application = App(cluster=cluster, namespace=namespace, database_url=database.url, s3=s3, bucket=bucket)
    application.create_secrets()
    return application
