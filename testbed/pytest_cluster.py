"""Pytest fixtures for the Kubernetes part of the test bed (``pytest_plugins = ["testbed.pytest_cluster"]``).

Session-scoped: ``bed_dir`` (a directory under /tmp, removed when the session
passes, kept for the post-mortem when it fails), ``cluster`` (a started
:class:`testbed.cluster.Cluster`) and ``kubelet`` (the started real node,
:class:`testbed.node.Node`, every pod from the images ``make image`` built).
Function-scoped: ``namespace`` (a fresh namespace, deleted afterwards).

A missing binary raises :class:`testbed.tools.MissingTool`: the test bed is
required, so it is an error, never a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from testbed import existing, netns, operating, procs
from testbed.cluster import Cluster
from testbed.node import BED_DIR_MARKER, Node


@pytest.fixture(scope="session")
def bed_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The session's working directory for servers' data and logs."""
    path = Path(tempfile.mkdtemp(prefix=BED_DIR_MARKER, dir="/tmp"))
    yield path
    if request.session.testsfailed == 0 and not os.environ.get("ALEMBIC_OPERATOR_KEEP_BED"):
        shutil.rmtree(path, ignore_errors=True)
    else:
        # The logs are what an inspection reads; the node's containerd content (the imported images,
        # ~0.8 GB) would fill the disk over a few failed runs. `python -m testbed.node clean` removes the rest.
        shutil.rmtree(path / "node" / "containerd", ignore_errors=True)
        print(f"\ntest bed kept for inspection (logs; images dropped): {path}")


def _entered(network: netns.BedNetwork | None) -> netns.BedNetwork:
    assert network is not None, "no bed network namespace: the existing-cluster opt-in is set"
    return network


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster(bed_dir: Path, bed_network: netns.BedNetwork | None) -> Iterator[Cluster]:
    """A real etcd + kube-apiserver + kube-controller-manager on loopback.

    The servers run in their own sessions, so a test process ended by SIGTERM
    (``timeout``, a CI runner) would leave them running: while the cluster is up,
    SIGTERM becomes a KeyboardInterrupt, which pytest answers with fixture teardown.
    """
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    kubeconfig = existing.requested()
    bed = existing.ExistingCluster(kubeconfig) if kubeconfig else Cluster(node_ip=_entered(bed_network).node_ip)
    try:
        bed.start(bed_dir / "cluster")
        yield bed
    finally:
        bed.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def kubelet(cluster: Cluster, bed_dir: Path, bed_network: netns.BedNetwork | None) -> Iterator[Node]:
    """The session's node ``bed-node``: the real one, :class:`testbed.node.Node` (containerd + runc +
    kubelet + kube-scheduler); under the existing-cluster opt-in that cluster's first Ready node."""
    operating.bed_runtime()  # a retired runtime asked for fails here, loudly
    if isinstance(cluster, existing.ExistingCluster):
        yield existing.ExistingNode(cluster).start()
        return
    node = Node(cluster, bed_dir / "node", _entered(bed_network))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, with its ``default`` ServiceAccount ready; deleted afterwards."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem or 't'}-{secrets.token_hex(3)}"
    with cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name)))
        # Pods created before the ServiceAccount controller made "default" are rejected by admission.
        procs.wait_until(
            lambda: core.read_namespaced_service_account("default", name),
            30,
            f"ServiceAccount default in namespace {name}",
        )
        try:
            yield name
        finally:
            try:
                core.delete_namespace(name, propagation_policy="Background")
            except kubernetes.client.ApiException as error:
                if error.status != 404:
                    raise
