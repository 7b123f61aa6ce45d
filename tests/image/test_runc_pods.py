"""The process kubelet's container mode: Pods run from the built images under runc.

A Pod whose image table entry says ``runtime: runc`` runs as a container of an image
``make image`` built: as the image's user (or runAsUser/runAsGroup), on a read-only root
when asked, with its emptyDir volumes, the projected ServiceAccount token at the standard
path (in-cluster config works, no KUBECONFIG) and the termination message at
/dev/termination-log. These tests register their own image names, so they work whatever
runtime the session's ``alembic-operator:dev`` maps to.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from testbed import containers, operating, ports, procs
from testbed.cluster import Cluster
from testbed.kubelet import ProcessKubelet

pytestmark = pytest.mark.timeout(1800)

OPERATOR_IMAGE = "bed.local/alembic-operator:runc"
"""The operator image under runc, whatever ``alembic-operator:dev`` maps to in this session."""
UNBUILT_IMAGE = "bed.local/never-built:runc"

RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture
def runc_kubelet(built_images: dict[str, str], kubelet: ProcessKubelet) -> ProcessKubelet:
    kubelet.register_image(OPERATOR_IMAGE, runtime="runc", built_image="alembic-operator:dev")
    kubelet.register_image(UNBUILT_IMAGE, runtime="runc", built_image="never-built-image:dev")
    return kubelet


@pytest.fixture
def core(cluster: Cluster) -> Iterator[kubernetes.client.CoreV1Api]:
    with cluster.api_client() as api:
        yield kubernetes.client.CoreV1Api(api)


def step_like_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A Pod shaped like the operator's step pods: restricted, read-only root, emptyDir at /tmp."""
    container = {
        "name": "step",
        "image": OPERATOR_IMAGE,
        "command": ["sh", "-c", script],
        "securityContext": RESTRICTED,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "env": [{"name": "GREETING", "value": "hello"}],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            **spec,
        },
    }


def wait_pod(
    core: kubernetes.client.CoreV1Api, namespace: str, name: str, phases=("Succeeded", "Failed"), timeout: float = 120
) -> Any:
    def ended() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in phases else None

    return procs.wait_until(ended, timeout, f"pod {namespace}/{name} in {phases}", interval=0.3)


def test_a_step_pod_runs_as_non_root_on_a_read_only_root_with_its_empty_dir(runc_kubelet, core, namespace):
    script = (
        "id -u; id -g; echo $GREETING; "
        "touch /x 2>&1 && echo ROOT-WRITABLE || echo ROOT-READ-ONLY; "
        "touch /tmp/y && echo TMP-WRITABLE; "
        "echo KUBECONFIG=${KUBECONFIG:-unset} TMP=${TERMINATION_MESSAGE_PATH:-unset}; "
        "test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo TOKEN || echo NO-TOKEN; "
        "printf 'all done' > /dev/termination-log"
    )
    core.create_namespaced_pod(namespace, step_like_pod("steplike", script))
    pod = wait_pod(core, namespace, "steplike")
    out = runc_kubelet.pod_log_path(namespace, "steplike", "step").read_text()
    assert pod.status.phase == "Succeeded", out
    lines = out.splitlines()
    assert lines[:3] == ["1000", "1000", "hello"], out  # the image's USER 1000:1000
    assert "ROOT-READ-ONLY" in out and "Read-only file system" in out, out
    assert "TMP-WRITABLE" in out, out
    assert "KUBECONFIG=unset TMP=unset" in out and "NO-TOKEN" in out, out
    state = pod.status.container_statuses[0]
    assert state.state.terminated.exit_code == 0
    assert state.state.terminated.message == "all done"
    assert state.container_id.startswith("runc://")
    uid = pod.metadata.uid
    assert (runc_kubelet.pod_dir(uid) / "volumes" / "empty-dir" / "tmp" / "y").exists()


def test_run_as_user_and_group_and_a_writable_root_are_honoured(runc_kubelet, core, namespace):
    script = "id -u; id -g; touch /x 2>&1; exit 3"
    pod = step_like_pod(
        "runas",
        script,
        securityContext={"runAsUser": 4321, "runAsGroup": 4322},
        container={"securityContext": {"readOnlyRootFilesystem": False}},
    )
    core.create_namespaced_pod(namespace, pod)
    pod = wait_pod(core, namespace, "runas")
    out = runc_kubelet.pod_log_path(namespace, "runas", "step").read_text()
    assert pod.status.phase == "Failed", out
    assert out.splitlines()[:2] == ["4321", "4322"], out
    assert "Permission denied" in out and "Read-only" not in out, out  # a writable root, "/" owned by root
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert "4321" in (terminated.message or ""), terminated  # FallbackToLogsOnError


def test_run_as_non_root_refuses_an_image_user_of_root(runc_kubelet, core, namespace):
    pod = step_like_pod("asroot", "id -u", securityContext={"runAsUser": 0})
    core.create_namespaced_pod(namespace, pod)

    def config_error() -> Any:
        statuses = core.read_namespaced_pod("asroot", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting if waiting is not None and waiting.reason == "CreateContainerConfigError" else None

    waiting = procs.wait_until(config_error, 60, "CreateContainerConfigError")
    assert "runAsNonRoot" in waiting.message


def test_the_projected_token_works_in_cluster(runc_kubelet, core, namespace):
    script = r"""
import os
from kubernetes import client, config
config.load_incluster_config()
from alembic_operator import kube
review = client.AuthenticationV1Api(kube.api_client()).create_self_subject_review(
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
print("USER", review.status.user_info.username)
print("KUBECONFIG" in os.environ, "TERMINATION_MESSAGE_PATH" in os.environ)
"""
    pod = step_like_pod(
        "whoami", "", automountServiceAccountToken=True, container={"command": ["python", "-c", script]}
    )
    core.create_namespaced_pod(namespace, pod)
    pod = wait_pod(core, namespace, "whoami")
    out = runc_kubelet.pod_log_path(namespace, "whoami", "step").read_text()
    assert pod.status.phase == "Succeeded", out
    assert f"USER system:serviceaccount:{namespace}:default" in out, out
    assert "False False" in out, out


def test_an_image_that_was_not_built_fails_to_pull(runc_kubelet, core, namespace):
    pod = step_like_pod("unbuilt", "true", container={"image": UNBUILT_IMAGE})
    core.create_namespaced_pod(namespace, pod)

    def pull_error() -> Any:
        statuses = core.read_namespaced_pod("unbuilt", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting if waiting is not None and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

    waiting = procs.wait_until(pull_error, 60, "ErrImagePull")
    assert "never-built-image" in waiting.message or "Back-off" in waiting.message


def _runc_ids() -> set[str]:
    out = subprocess.run(["runc", "--root", containers.RUNC_ROOT, "list", "-q"], capture_output=True, text=True)
    return set(out.stdout.split())


def test_deleting_the_pod_kills_and_removes_its_container(runc_kubelet, core, namespace):
    pod = step_like_pod("sleeper", "trap 'exit 0' TERM; sleep 600 & wait", terminationGracePeriodSeconds=30)
    created = core.create_namespaced_pod(namespace, pod)
    wait_pod(core, namespace, "sleeper", phases=("Running",))
    ids = {i for i in _runc_ids() if created.metadata.uid in i}
    assert ids, _runc_ids()
    started = time.monotonic()
    core.delete_namespaced_pod("sleeper", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
            return False
        except kubernetes.client.ApiException as error:
            return error.status == 404

    procs.wait_until(gone, 30, "the deleted pod to go")
    assert time.monotonic() - started < 15
    assert not (ids & _runc_ids())


def test_a_restarted_kubelet_removes_the_containers_a_crashed_one_left(runc_kubelet, core, namespace):
    created = core.create_namespaced_pod(namespace, step_like_pod("survivor", "exec sleep 300"))
    wait_pod(core, namespace, "survivor", phases=("Running",))
    ids = {i for i in _runc_ids() if created.metadata.uid in i}
    assert ids, _runc_ids()
    runc_kubelet.kill()
    try:
        time.sleep(1)
        assert ids <= _runc_ids(), "the container should outlive a crashed kubelet"
    finally:
        runc_kubelet.start()
    lost = wait_pod(core, namespace, "survivor", phases=("Failed",), timeout=30)
    assert lost.status.reason == "NodeLost"
    procs.wait_until(lambda: not (ids & _runc_ids()), 10, "the orphaned container to be removed")


def test_the_operator_runs_from_its_image_under_runc_and_reconciles_a_run(runc_kubelet, core, operator, app):
    """The Helm chart's Deployment: `alembic-operator operator` in a Pod, in-cluster config, as its SA."""
    operator.stop()  # one operator at a time
    name = f"operator-{secrets.token_hex(3)}"
    liveness = ports.free_port()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": operating.NAMESPACE},
        "spec": {
            "serviceAccountName": operating.SERVICE_ACCOUNT,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "operator",
                    "image": OPERATOR_IMAGE,
                    "args": [
                        "operator",
                        "--namespace",
                        app.namespace,
                        "--metrics-port",
                        str(ports.free_port()),
                        "--liveness",
                        f"http://127.0.0.1:{liveness}/healthz",
                    ],
                    "env": [
                        {"name": "ALEMBIC_OPERATOR_IMAGE", "value": "alembic-operator:dev"},
                        # The bed's S3 speaks plain http: the administrator's explicit allowance.
                        {"name": "ALEMBIC_OPERATOR_S3_ALLOW_HTTP", "value": "true"},
                    ],
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }
    try:
        core.create_namespaced_pod(operating.NAMESPACE, pod)
        wait_pod(core, operating.NAMESPACE, name, phases=("Running",), timeout=60)
        ports.wait_for_port(liveness, timeout=60)
        app.apply(app.manifest("from-pod"))
        status = app.wait("from-pod", timeout=240)["status"]
        log = runc_kubelet.pod_log_path(operating.NAMESPACE, name, "operator").read_text()
        assert status["phase"] == "Succeeded", (status, log[-4000:])
        assert core.read_namespaced_pod(name, operating.NAMESPACE).status.phase == "Running"
    finally:
        with contextlib.suppress(kubernetes.client.ApiException):
            core.delete_namespaced_pod(name, operating.NAMESPACE)
        operator.start()


@pytest.mark.parametrize(
    ("pod_ctx", "ctx", "image_user", "expected"),
    [
        ({}, {}, "1000:1000", "1000:1000"),  # the image's USER
        ({}, {}, None, None),  # root, as the image says nothing
        ({"runAsUser": 5}, {}, "1000:1000", "5"),  # group then from the image's /etc/passwd
        ({"runAsUser": 5}, {"runAsUser": 6, "runAsGroup": 7}, "1000:1000", "6:7"),  # container over pod
        ({"runAsGroup": 9}, {}, "1000:1000", "1000:9"),
        ({}, {"runAsGroup": 9}, "app", "app:9"),
    ],
)
def test_run_as_takes_the_security_context_over_the_image_user(pod_ctx, ctx, image_user, expected):
    from testbed.kubelet import run_as

    assert run_as({"securityContext": pod_ctx}, {"securityContext": ctx}, image_user) == expected
