"""The end-to-end suites against a cluster the user already has, instead of starting a bed.

Opt-in, both set: ``ALEMBIC_OPERATOR_TEST_EXISTING_CLUSTER=yes`` and
``ALEMBIC_OPERATOR_TEST_KUBECONFIG=<path>`` (a kubeconfig allowed to create namespaces, CRDs,
ClusterRoles). Then the ``cluster`` fixture is an :class:`ExistingCluster` over that kubeconfig
and ``kubelet`` an :class:`ExistingNode` (the cluster's first Ready node): no etcd, apiserver,
node or network namespace is started, and nothing of the cluster is stopped at the end.
PostgreSQL and S3 still run on this machine; they listen on ``ALEMBIC_OPERATOR_TEST_SERVICE_HOST``
(an address of this machine the cluster's pods reach, e.g. kind's Docker network gateway) and
PostgreSQL also admits logins from ``ALEMBIC_OPERATOR_TEST_CLIENT_NETS`` (comma-separated CIDRs the
pods' connections come from). The images the suites run (``alembic-operator:dev``,
``example-app:dev`` and its variants) must already be on the cluster's nodes:
``python -m testbed.existing export DIR`` writes them as OCI archives for ``kind load
image-archive``, ``k3d image import`` or ``ctr images import``; :meth:`ExistingNode.register_images`
fails naming any image no node reports.

This module must not start or stop anything of the cluster: the cluster is the user's.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import yaml

from testbed import ociimage, procs
from testbed.cluster import Cluster
from testbed.node import Node

EXISTING_ENV = "ALEMBIC_OPERATOR_TEST_EXISTING_CLUSTER"
KUBECONFIG_ENV = "ALEMBIC_OPERATOR_TEST_KUBECONFIG"
SERVICE_HOST_ENV = "ALEMBIC_OPERATOR_TEST_SERVICE_HOST"
CLIENT_NETS_ENV = "ALEMBIC_OPERATOR_TEST_CLIENT_NETS"
IMAGE_REPORT_SECONDS = 75.0


def requested() -> Path | None:
    """The kubeconfig of the existing cluster when the opt-in is set, else None (the bed is the default).
    Half an opt-in is an error: a run must never silently fall back to, or away from, the bed."""
    flag = os.environ.get(EXISTING_ENV, "")
    path = os.environ.get(KUBECONFIG_ENV, "")
    if flag in ("", "no") and not path:
        return None
    if flag != "yes" or not path:
        raise RuntimeError(
            f"set both {EXISTING_ENV}=yes and {KUBECONFIG_ENV}=<path> (or neither): got {flag!r}, {path!r}"
        )
    kubeconfig = Path(path)
    if not kubeconfig.is_file():
        raise RuntimeError(f"{KUBECONFIG_ENV}={path}: no such file")
    return kubeconfig


def client_nets() -> list[str]:
    """Extra CIDRs PostgreSQL admits logins from (``$ALEMBIC_OPERATOR_TEST_CLIENT_NETS``)."""
    return [net.strip() for net in os.environ.get(CLIENT_NETS_ENV, "").split(",") if net.strip()]


class ExistingCluster(Cluster):
    """A :class:`~testbed.cluster.Cluster` whose control plane someone else runs: the same clients
    (kubectl, the official client, ServiceAccount kubeconfigs), no servers."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__()
        self.kubeconfig = kubeconfig
        config = yaml.safe_load(kubeconfig.read_text())
        context = _named(config, "contexts", config["current-context"])["context"]
        entry = _named(config, "clusters", context["cluster"])["cluster"]
        self.server = str(entry["server"])
        self._ca_data = entry.get("certificate-authority-data")
        self._ca_path = entry.get("certificate-authority")

    def start(self, workdir: Path) -> ExistingCluster:
        """Only check that the cluster answers (``/readyz``) and keep ``workdir`` for kubeconfigs."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_file = workdir / "ca.crt"
        if self._ca_data:
            self.ca_file.write_bytes(base64.b64decode(self._ca_data))
        elif self._ca_path:
            self.ca_file.write_bytes(Path(self._ca_path).read_bytes())
        self.kubectl("get", "--raw", "/readyz")
        return self

    def stop(self) -> None:
        """Nothing: the cluster is the user's."""

    def configuration(self, token: str | None = None) -> kubernetes.client.Configuration:
        """The kubeconfig's credentials (any kind: token, client certificate, exec), or ``token``."""
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=config)
        if "authorization" in config.api_key:  # the loader's key ("Bearer <token>"); the client sends BearerToken
            config.api_key = {"BearerToken": config.api_key.pop("authorization")}
        if token is not None:
            config.cert_file = config.key_file = None
            config.api_key = {"BearerToken": token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def logs(self) -> dict[str, Path]:
        return {}


class ExistingNode(Node):
    """The existing cluster's first Ready node, as the suites use a bed's :class:`~testbed.node.Node`:
    its name, pod logs (``kubectl logs``) and the images pods may use. Starts and stops nothing."""

    def __init__(self, cluster: ExistingCluster) -> None:  # pylint: disable=super-init-not-called
        self.cluster = cluster
        self.name = ""
        self.servers = {}
        self.holder = None
        self.cgroup = ""

    def start(self) -> ExistingNode:
        def ready_node() -> str | None:
            with self.cluster.api_client() as api:
                for node in kubernetes.client.CoreV1Api(api).list_node().items:
                    if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
                        return str(node.metadata.name)
            return None

        try:
            self.name = procs.wait_until(ready_node, 60, "a Ready node in the existing cluster")
        except TimeoutError:
            ready_node()  # once more, letting its error (403, unreachable) say why
            raise
        return self

    def stop(self) -> None:
        """Nothing: the node is the user's."""

    def leftovers(self) -> list[str]:
        return []

    def node_images(self) -> set[str]:
        """Every image name the cluster's nodes report having (``status.images``)."""
        with self.cluster.api_client() as api:
            nodes = kubernetes.client.CoreV1Api(api).list_node().items
        return {name for node in nodes for image in node.status.images or [] for name in image.names or []}

    def register_images(self, variants: dict[str, dict[str, Any]], *, built_image: str) -> None:
        """Check that every image of ``variants`` is already on a node (loaded by the user, see the
        module docstring): a missing one fails here, not as a pod stuck in ErrImageNeverPull later.
        A kubelet lists an image it was just given only at its next image-cache refresh (30 s), so
        this waits up to :data:`IMAGE_REPORT_SECONDS` before calling one missing."""
        wanted = {ociimage.normalized(image) for image in variants}
        missing = sorted(wanted - self.node_images())
        deadline = time.monotonic() + IMAGE_REPORT_SECONDS
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            missing = sorted(wanted - self.node_images())
        if missing:
            raise RuntimeError(
                f"not on any node of the existing cluster: {missing} (from {built_image}); write them with "
                "`python -m testbed.existing export DIR` and load them (kind load image-archive, "
                "k3d image import, ctr -n k8s.io images import)"
            )


def suite_images() -> dict[str, dict[str, dict[str, Any]]]:
    """Every image the end-to-end suites run, by the image ``make image`` built: the operator
    image, the example app's variants of :func:`testbed.operating.register_images` and those of
    the Helm suite (tests/helm/bed.py)."""
    from testbed import operating

    captured: dict[str, dict[str, dict[str, Any]]] = {}

    class Recorder(Node):
        """A node that only notes what the suites would register on it."""

        def __init__(self) -> None:  # pylint: disable=super-init-not-called
            pass

        def register_images(self, variants: dict[str, dict[str, Any]], *, built_image: str) -> None:
            captured.setdefault(built_image, {}).update(variants)

    operating.register_images(Recorder())
    from tests.helm import bed  # the Helm suite's own variants live with it (imported only here)

    bed.register_app_images(Recorder())
    return captured


def export(directory: Path) -> list[Path]:
    """Write each built image's variants as one OCI archive (``<built image>.oci.tar``) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for built_image, variants in suite_images().items():
        layout = ociimage.built_layout(built_image.split("/")[-1].split(":")[0])
        named = {ociimage.normalized(image): change for image, change in variants.items()}
        archive = directory / f"{built_image.split(':')[0]}.oci.tar"
        with archive.open("wb") as out:
            ociimage.write_stream(out, ociimage.variant_stream(layout, named, with_layers=True))
        written.append(archive)
    return written


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    return next(item for item in config[section] if item["name"] == name)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "export":
        print("usage: python -m testbed.existing export DIR", file=sys.stderr)
        return 2
    for archive in export(Path(argv[1])):
        print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
