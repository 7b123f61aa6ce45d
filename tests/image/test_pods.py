"""The operator image as a pod on the bed's real node, shaped like the operator's step pods.

What the image must give every step pod on a user's cluster, checked through a real kubelet
(containerd + runc), not a local process: it runs as the image's non-root user (1000:1000) under
the restricted security context the Job builders set (runAsNonRoot, read-only root, all
capabilities dropped, RuntimeDefault seccomp), writes only to its emptyDir, authenticates in
cluster with its projected ServiceAccount token (no KUBECONFIG), and its termination message
reaches the Pod's status. (The emulated kubelet's runc tests proved this before issue 17.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from testbed import procs
from testbed.cluster import Cluster
from testbed.node import Node

pytestmark = pytest.mark.timeout(600)

IMAGE = "bed.local/alembic-operator:pod-test"
"""The built operator image under a name of this module's own (whatever else the session registers)."""

RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

PROBE = r"""
import os, pathlib
from kubernetes import client
print("IDS", os.getuid(), os.getgid())
try:
    pathlib.Path("/probe").write_text("x")
    print("ROOT writable")
except OSError as error:
    print("ROOT", error.strerror)
pathlib.Path("/tmp/probe").write_text("x")
print("TMP writable")
print("KUBECONFIG" in os.environ)
from alembic_operator import kube  # how the command-line client builds its client: in-cluster first
review = client.AuthenticationV1Api(kube.api_client()).create_self_subject_review(
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
print("USER", review.status.user_info.username)
pathlib.Path("/dev/termination-log").write_text('{"probe": "done"}')
"""


@pytest.fixture
def core(cluster: Cluster) -> Iterator[kubernetes.client.CoreV1Api]:
    with cluster.api_client() as api:
        yield kubernetes.client.CoreV1Api(api)


def step_like_pod(name: str) -> dict[str, Any]:
    """A Pod as controller/builders/pods.py shapes a step's (restricted, emptyDir at /tmp), with the token."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "step",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", PROBE],
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def test_the_operator_image_runs_as_a_restricted_step_pod_and_authenticates_in_cluster(
    kubelet: Node, cluster: Cluster, core: kubernetes.client.CoreV1Api, namespace: str
) -> None:
    # the image `make image` built last (`make image-test` and `make test` build it first), as every bed test uses
    kubelet.register_image(IMAGE, built_image="alembic-operator:dev")
    core.create_namespaced_pod(namespace, step_like_pod("probe"))

    def ended() -> Any:
        found = core.read_namespaced_pod("probe", namespace)
        return found if found.status.phase in ("Succeeded", "Failed") else None

    pod = procs.wait_until(ended, 180, f"pod {namespace}/probe to end", interval=0.3)
    out = kubelet.pod_log(namespace, "probe", "step")
    assert pod.status.phase == "Succeeded", out
    assert pod.spec.node_name == kubelet.name, pod.spec.node_name  # on the real node, by the scheduler
    lines = out.splitlines()
    assert "IDS 1000 1000" in lines, out  # the image's USER, not root
    assert "ROOT Read-only file system" in lines, out
    assert "TMP writable" in lines, out
    assert "False" in lines, out  # no KUBECONFIG: in-cluster config from the projected token
    assert f"USER system:serviceaccount:{namespace}:default" in lines, out
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.message == '{"probe": "done"}'
    assert terminated.container_id.startswith("containerd://")
