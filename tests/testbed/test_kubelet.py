"""The process kubelet runs Pods the way the operator's Jobs need: the real Job controller
creates them, the kubelet binds and runs them as processes, and reports what a kubelet reports."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client import ApiException

from testbed import procs
from testbed.cluster import Cluster
from testbed.kubelet import ProcessKubelet, process_start_time


@pytest.fixture
def api(cluster: Cluster, kubelet: ProcessKubelet) -> Iterator[kubernetes.client.ApiClient]:
    """An admin client; requesting it also starts the kubelet."""
    with cluster.api_client() as client:
        yield client


def job(
    name: str, script: str, *, backoff_limit: int = 0, env: list[dict[str, Any]] | None = None, **container: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": "test-shell:dev",
                            "command": ["sh", "-c", script],
                            "env": env or [],
                            **container,
                        }
                    ],
                }
            },
        },
    }


def pod(name: str, script: str, *, image: str = "test-shell:dev", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "main", "image": image, "command": ["sh", "-c", script]}],
            **spec,
        },
    }


def wait_for_job_condition(
    api: kubernetes.client.ApiClient, namespace: str, name: str, kind: str, timeout: float = 60
) -> Any:
    batch = kubernetes.client.BatchV1Api(api)

    def condition() -> Any:
        current = batch.read_namespaced_job(name, namespace)
        for cond in current.status.conditions or []:
            if cond.status == "True" and cond.type in ("Complete", "Failed"):
                assert cond.type == kind, f"Job ended {cond.type} ({cond.reason}: {cond.message}), not {kind}"
                return current
        return None

    return procs.wait_until(condition, timeout, f"Job {namespace}/{name} to be {kind}", interval=0.3)


def job_pods(api: kubernetes.client.ApiClient, namespace: str, name: str) -> list[Any]:
    return (
        kubernetes.client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}")
        .items
    )


def wait_for_pod_phase(
    api: kubernetes.client.ApiClient, namespace: str, name: str, phase: str, timeout: float = 30
) -> Any:
    core = kubernetes.client.CoreV1Api(api)
    return procs.wait_until(
        lambda: (p := core.read_namespaced_pod(name, namespace)).status.phase == phase and p,
        timeout,
        f"pod {namespace}/{name} to be {phase}",
        interval=0.2,
    )


def test_job_completes_with_its_termination_message_and_env_from_secret_and_config_map(
    api: kubernetes.client.ApiClient, kubelet: ProcessKubelet, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"greeting": "hello"}})
    env = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "ABSENT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PHRASE", "value": "$(GREETING) from $(POD_NAME)"},
    ]
    script = 'echo "$PHRASE: $PASSWORD ${ABSENT-unset} $(POD_NAME)"; printf done > "$TERMINATION_MESSAGE_PATH"'
    kubernetes.client.BatchV1Api(api).create_namespaced_job(namespace, job("hello", script, env=env))

    finished = wait_for_job_condition(api, namespace, "hello", "Complete")

    assert finished.status.succeeded == 1
    [the_pod] = job_pods(api, namespace, "hello")
    assert the_pod.spec.node_name == kubelet.node
    assert the_pod.status.phase == "Succeeded"
    terminated = the_pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason, terminated.message) == (0, "Completed", "done")
    name = the_pod.metadata.name
    log = kubelet.pod_log_path(namespace, name).read_text()
    assert log == f"hello from {name}: s3cret unset {name}\n"


def test_failing_job_fails_after_its_backoff_limit_with_the_log_tail_as_message(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    kubernetes.client.BatchV1Api(api).create_namespaced_job(
        namespace,
        job(
            "boom",
            "echo starting; echo boom >&2; exit 3",
            backoff_limit=1,
            terminationMessagePolicy="FallbackToLogsOnError",
        ),
    )

    failed = wait_for_job_condition(api, namespace, "boom", "Failed", timeout=90)

    assert failed.status.failed == 2
    pods = job_pods(api, namespace, "boom")
    assert [p.status.phase for p in pods] == ["Failed", "Failed"]
    for failed_pod in pods:
        terminated = failed_pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (3, "Error")
        assert terminated.message == "starting\nboom\n"


def test_pod_process_authenticates_with_its_projected_service_account_token(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "migrator"}})
    script = (
        'kubectl --kubeconfig "$KUBECONFIG" auth whoami -o json > "$TERMINATION_MESSAGE_PATH"; '
        'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"'
    )
    core.create_namespaced_pod(namespace, pod("whoami", script, serviceAccountName="migrator"))

    done = wait_for_pod_phase(api, namespace, "whoami", "Succeeded")

    review = json.loads(done.status.container_statuses[0].state.terminated.message)
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:migrator"
    assert review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"] == ["whoami"]


def test_pod_without_automounted_token_gets_no_kubeconfig(api: kubernetes.client.ApiClient, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace,
        pod(
            "no-token",
            'printf "[${KUBECONFIG-none}]" > "$TERMINATION_MESSAGE_PATH"',
            automountServiceAccountToken=False,
        ),
    )

    done = wait_for_pod_phase(api, namespace, "no-token", "Succeeded")

    assert done.status.container_statuses[0].state.terminated.message == "[none]"


def test_image_missing_from_the_table_leaves_the_pod_pending_until_it_is_registered(
    api: kubernetes.client.ApiClient, kubelet: ProcessKubelet, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    image = f"not-pulled-{secrets.token_hex(3)}:1.0"
    core.create_namespaced_pod(namespace, pod("unpulled", "printf ran > $TERMINATION_MESSAGE_PATH", image=image))

    def backing_off() -> Any:
        current = core.read_namespaced_pod("unpulled", namespace)
        waiting = (current.status.container_statuses or [None])[0] or None
        waiting = waiting and waiting.state.waiting
        return waiting and waiting.reason == "ImagePullBackOff" and (current, waiting)

    current, waiting = procs.wait_until(backing_off, 20, "ImagePullBackOff")
    assert current.status.phase == "Pending"
    assert image in waiting.message
    assert not kubelet.pod_log_path(namespace, "unpulled", "main").exists()

    kubelet.register_image(image.split(":")[0], env={"PATH": "/usr/bin:/bin"})
    done = wait_for_pod_phase(api, namespace, "unpulled", "Succeeded")
    assert done.status.container_statuses[0].state.terminated.message == "ran"


def test_deleting_a_running_pod_kills_its_process_and_removes_the_pod(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("sleeper", "exec sleep 300"))
    running = wait_for_pod_phase(api, namespace, "sleeper", "Running")
    status = running.status.container_statuses[0]
    assert status.ready and status.state.running.started_at
    assert {c.type for c in running.status.conditions if c.status == "True"} >= {
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
    }
    pid = int(status.container_id.removeprefix("process://"))
    started = process_start_time(pid)
    assert started is not None and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep")

    core.delete_namespaced_pod("sleeper", namespace)

    def pod_gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    procs.wait_until(pod_gone, 20, "the deleted pod to disappear", interval=0.2)
    assert process_start_time(pid) != started, f"process {pid} outlived its pod"


def test_active_deadline_fails_the_pod_with_deadline_exceeded(api: kubernetes.client.ApiClient, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("slow", "exec sleep 300", activeDeadlineSeconds=2))

    failed = wait_for_pod_phase(api, namespace, "slow", "Failed", timeout=20)

    assert failed.status.reason == "DeadlineExceeded"
    assert failed.status.container_statuses[0].state.terminated.exit_code in (137, 143)


def test_on_failure_restarts_the_container_and_counts_restarts(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    script = 'n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 1 ]'
    core.create_namespaced_pod(namespace, pod("flaky", script, restartPolicy="OnFailure"))

    done = wait_for_pod_phase(api, namespace, "flaky", "Succeeded", timeout=20)

    status = done.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert status.state.terminated.exit_code == 0


def test_restarted_kubelet_kills_orphaned_processes_and_marks_their_pod_node_lost(
    api: kubernetes.client.ApiClient, kubelet: ProcessKubelet, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("survivor", "exec sleep 300"))
    running = wait_for_pod_phase(api, namespace, "survivor", "Running")
    pid = int(running.status.container_statuses[0].container_id.removeprefix("process://"))

    kubelet.kill()
    try:
        assert process_start_time(pid) is not None, "the pod's process should outlive a crashed kubelet"
    finally:
        kubelet.start()

    lost = wait_for_pod_phase(api, namespace, "survivor", "Failed", timeout=20)
    assert lost.status.reason == "NodeLost"
    assert lost.status.container_statuses[0].state.terminated.reason == "ContainerStatusUnknown"
    procs.wait_until(lambda: process_start_time(pid) is None, 5, f"orphaned process {pid} to be killed")


def test_deployment_pods_run_become_available_and_restart_when_they_exit(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {"name": "main", "image": "test-shell:dev", "command": ["sh", "-c", "sleep 3; exit 1"]}
                        ],
                    },
                },
            },
        },
    )

    procs.wait_until(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas,
        30,
        "the Deployment to have a ready replica",
        interval=0.2,
    )
    [web] = core.list_namespaced_pod(namespace, label_selector="app=web").items

    def restarted() -> Any:
        status = core.read_namespaced_pod(web.metadata.name, namespace).status
        return status.container_statuses[0].restart_count >= 1 and status

    status = procs.wait_until(restarted, 20, "the container to be restarted (restartPolicy Always)")
    assert status.phase == "Running"
    assert status.container_statuses[0].last_state.terminated.exit_code == 1


def test_init_containers_run_first_and_report_their_own_termination_message(
    api: kubernetes.client.ApiClient, kubelet: ProcessKubelet, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    spec = pod("with-init", 'pwd; printf "main after $(cat /tmp/$MARKER)" > "$TERMINATION_MESSAGE_PATH"')["spec"]
    marker = f"bed-init-{secrets.token_hex(4)}"
    spec["containers"][0].update(workingDir="/", env=[{"name": "MARKER", "value": marker}])
    spec["initContainers"] = [
        {
            "name": "prepare",
            "image": "busybox",
            "command": ["sh", "-c", f'printf prepared > /tmp/{marker}; printf ok > "$TERMINATION_MESSAGE_PATH"'],
        }
    ]
    core.create_namespaced_pod(namespace, {"metadata": {"name": "with-init"}, "spec": spec})

    try:
        done = wait_for_pod_phase(api, namespace, "with-init", "Succeeded")
    finally:
        Path(f"/tmp/{marker}").unlink(missing_ok=True)

    assert done.status.init_container_statuses[0].state.terminated.message == "ok"
    assert done.status.container_statuses[0].state.terminated.message == "main after prepared"
    assert kubelet.pod_log_path(namespace, "with-init", "main").read_text() == "/\n"
    assert {c.type: c.status for c in done.status.conditions}["Initialized"] == "True"


def test_missing_secret_holds_the_container_in_create_container_config_error_until_it_exists(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    spec = pod("needs-secret", 'printf "$DSN" > "$TERMINATION_MESSAGE_PATH"')["spec"]
    spec["containers"][0]["envFrom"] = [{"secretRef": {"name": "db"}, "prefix": "DB_"}]
    spec["containers"][0]["env"] = [{"name": "DSN", "value": "$(DB_USER)@db"}]
    core.create_namespaced_pod(namespace, {"metadata": {"name": "needs-secret"}, "spec": spec})

    def config_error() -> Any:
        statuses = core.read_namespaced_pod("needs-secret", namespace).status.container_statuses or []
        waiting = statuses and statuses[0].state.waiting
        return waiting and waiting.reason == "CreateContainerConfigError" and waiting

    waiting = procs.wait_until(config_error, 20, "CreateContainerConfigError")
    assert waiting.message == 'secret "db" not found'
    assert core.read_namespaced_pod("needs-secret", namespace).status.phase == "Pending"

    core.create_namespaced_secret(namespace, {"metadata": {"name": "db"}, "stringData": {"USER": "app"}})
    done = wait_for_pod_phase(api, namespace, "needs-secret", "Succeeded")
    assert done.status.container_statuses[0].state.terminated.message == "app@db"


def test_deleting_a_job_in_background_kills_its_running_pod(api: kubernetes.client.ApiClient, namespace: str) -> None:
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, job("long", "exec sleep 300"))
    running = procs.wait_until(
        lambda: [p for p in job_pods(api, namespace, "long") if p.status.phase == "Running"],
        30,
        "the Job's pod to run",
        interval=0.2,
    )[0]
    pid = int(running.status.container_statuses[0].container_id.removeprefix("process://"))
    started = process_start_time(pid)

    batch.delete_namespaced_job("long", namespace, propagation_policy="Background")

    procs.wait_until(lambda: not job_pods(api, namespace, "long"), 30, "the Job's pod to be deleted", interval=0.2)
    assert process_start_time(pid) != started, f"process {pid} outlived its pod"
