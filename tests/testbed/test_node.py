"""The real node (testbed/node.py): kubelet v1.37.2 + containerd + runc in the bed's own
network namespace runs pods the way a user's cluster does, and leaves nothing behind.

One bed for the module; the last test stops it and checks that no process, mount,
cgroup, interface or namespace of it is left.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from testbed import netns, procs, tools
from testbed import node as node_module
from testbed.node import NodeBed
from testbed.ociimage import BUSYBOX_IMAGE
from tests.testbed.test_cluster import pinned_kubernetes_version

HOST_BEFORE: dict[str, Any] = {}


def host_state() -> dict[str, Any]:
    """What the bed must not change on the machine: its interfaces, iptables rules and the
    sysctls the kubelet (and the CNI bridge, for ip_forward) would set."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    rules = (
        subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        if shutil.which("iptables-save")
        else ""
    )
    keys = [*node_module.KUBELET_SYSCTLS, "net/ipv4/ip_forward"]
    return {
        "links": sorted(line.split(":")[1].strip() for line in links.splitlines()),
        "iptables": [line for line in rules.splitlines() if line.startswith(("-A", "-N", "-I"))],
        "sysctls": {key: Path("/proc/sys", key).read_text().strip() for key in keys},
    }


def report(name: str, value: float | str) -> None:
    """Numbers for the record (shown with ``pytest -s``; also in the bed's workdir)."""
    print(f"\n[node] {name}: {value}")


@pytest.fixture(scope="module")
def bed() -> Iterator[NodeBed]:
    workdir = Path(tempfile.mkdtemp(prefix="alembic-operator-bed-", dir="/tmp"))
    started = time.monotonic()
    HOST_BEFORE.update(host_state())
    bed = NodeBed(workdir).start()
    report("bed start (netns + etcd + apiserver + kcm + node) s", round(time.monotonic() - started, 1))
    assert bed.node is not None
    report("node start -> Ready s", round(bed.node.timings["start_to_ready"], 1))
    report("  of which containerd + image import s", round(bed.node.timings["containerd_and_images"], 1))
    try:
        yield bed
    finally:
        left = bed.stop()
        if not left:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nbed kept for inspection: {workdir}")


@pytest.fixture
def core(bed: NodeBed) -> Iterator[kubernetes.client.CoreV1Api]:
    assert bed.cluster is not None
    with bed.cluster.api_client() as api:
        yield kubernetes.client.CoreV1Api(api)


@pytest.fixture
def ns(core: kubernetes.client.CoreV1Api) -> Iterator[str]:
    name = f"node-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name}})
    procs.wait_until(lambda: core.read_namespaced_service_account("default", name), 30, "default ServiceAccount")
    yield name
    core.delete_namespace(name)


def pod(name: str, command: str, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": container.pop("restartPolicy", "Never"),
            "terminationGracePeriodSeconds": 1,
            "volumes": container.pop("volumes", []),
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", command],
                    **container,
                }
            ],
        },
    }


def wait_pod(
    core: kubernetes.client.CoreV1Api,
    ns: str,
    name: str,
    what: str,
    predicate: Callable[[Any], bool],
    timeout: float = 60,
) -> Any:
    def check() -> Any:
        found = core.read_namespaced_pod(name, ns)
        return found if predicate(found) else None

    try:
        return procs.wait_until(check, timeout, f"pod {ns}/{name}: {what}", interval=0.1)
    except TimeoutError:
        print(json.dumps(core.read_namespaced_pod(name, ns).to_dict()["status"], default=str, indent=1))
        raise


def pod_log(core: kubernetes.client.CoreV1Api, ns: str, name: str) -> str:
    """The log as text (kubernetes==36.0.0's generated client returns ``"b'...'"``, a bytes repr)."""
    return str(core.read_namespaced_pod_log(name, ns, _preload_content=False).data.decode())


def terminated(found: Any) -> Any:
    statuses = found.status.container_statuses or []
    return statuses and statuses[0].state.terminated


def test_kubectl_get_nodes_shows_the_real_kubelet_ready(bed: NodeBed, core: kubernetes.client.CoreV1Api) -> None:
    assert bed.cluster is not None and bed.node is not None
    out = bed.cluster.kubectl("get", "nodes", "-o", "wide").stdout
    print(out)
    row = next(line.split() for line in out.splitlines() if line.startswith(bed.node.name + " "))
    assert row[1] == "Ready"
    assert row[4] == pinned_kubernetes_version()  # VERSION: the kubelet built from tools/go.mod
    assert row[5] == netns.NODE_IP  # INTERNAL-IP
    info = core.read_node(bed.node.name).status.node_info
    assert info.kubelet_version == pinned_kubernetes_version()
    assert info.container_runtime_version == f"containerd://{pinned_containerd_version()}"
    # the kubelet authenticated as system:node:<name> (Node authorization): its lease is its own
    coordination = kubernetes.client.CoordinationV1Api(core.api_client)
    lease = procs.wait_until(
        lambda: coordination.read_namespaced_lease(bed.node.name, "kube-node-lease"), 30, "the node's Lease"
    )
    assert lease.spec.holder_identity == bed.node.name


def test_a_pod_runs_and_its_log_is_read_through_the_kubelet(
    bed: NodeBed, core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    assert bed.cluster is not None and bed.node is not None
    created = time.monotonic()
    core.create_namespaced_pod(ns, pod("sleeper", "echo started; hostname; sleep 3600"))
    found = wait_pod(core, ns, "sleeper", "Running", lambda p: p.status.phase == "Running")
    report("pod create -> Running s", round(time.monotonic() - created, 2))
    assert found.spec.node_name == bed.node.name  # bound by the real kube-scheduler
    assert found.status.pod_ip.startswith("10.244.0.")
    logs = bed.cluster.kubectl("logs", "-n", ns, "sleeper").stdout  # apiserver -> kubelet (x509) -> containerd
    assert logs.split() == ["started", "sleeper"]
    report("memory KiB with one pod", json.dumps(bed.node.memory()))


def test_a_pod_reaches_the_apiserver_at_the_node_ip(bed: NodeBed, core: kubernetes.client.CoreV1Api, ns: str) -> None:
    """Pods on the CNI bridge reach bed services on the node IP (what later pieces rely on)."""
    assert bed.cluster is not None
    core.create_namespaced_pod(
        ns, pod("caller", f"nc -w 3 {netns.NODE_IP} {bed.cluster.apiserver_port} </dev/null && echo reached")
    )
    found = wait_pod(core, ns, "caller", "done", lambda p: p.status.phase in ("Succeeded", "Failed"))
    assert found.status.phase == "Succeeded"
    assert pod_log(core, ns, "caller") == "reached\n"


def test_secret_and_configmap_volumes_are_mounted_with_their_contents(
    core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cr3t-Ω"}})
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"app.ini": "[db]\nurl = postgresql://x\n"}}
    )
    spec = pod(
        "reader",
        "cat /secret/password; echo; echo ---; cat /config/app.ini; "
        "grep -q ' /secret tmpfs ' /proc/mounts && echo secret-on-tmpfs",
        volumeMounts=[
            {"name": "s", "mountPath": "/secret", "readOnly": True},
            {"name": "c", "mountPath": "/config", "readOnly": True},
        ],
        volumes=[
            {"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "c", "configMap": {"name": "settings"}},
        ],
    )
    core.create_namespaced_pod(ns, spec)
    found = wait_pod(core, ns, "reader", "Succeeded", lambda p: p.status.phase in ("Succeeded", "Failed"))
    assert found.status.phase == "Succeeded"
    log = pod_log(core, ns, "reader")
    assert log == "s3cr3t-Ω\n---\n[db]\nurl = postgresql://x\nsecret-on-tmpfs\n"


def test_a_memory_limit_ooms_the_container_with_exit_137(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    # exec: the OOM killer picks the biggest process; were it a child of sh, sh would exit 0 ("OOMKilled", 0)
    spec = pod(
        "hog",
        "exec dd if=/dev/zero of=/dev/null bs=256M count=1",
        resources={"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}},
    )
    core.create_namespaced_pod(ns, spec)
    found = wait_pod(core, ns, "hog", "Failed", lambda p: p.status.phase == "Failed" and terminated(p))
    state = found.status.container_statuses[0].state.terminated
    assert (state.reason, state.exit_code) == ("OOMKilled", 137)


def test_a_failing_liveness_probe_restarts_the_container(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    spec = pod(
        "unhealthy",
        "sleep 3600",
        restartPolicy="Always",
        livenessProbe={
            "exec": {"command": ["cat", "/tmp/healthy"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
            "timeoutSeconds": 1,
        },
    )
    core.create_namespaced_pod(ns, spec)
    found = wait_pod(
        core,
        ns,
        "unhealthy",
        "restarted twice",
        lambda p: (
            (p.status.container_statuses or [None])[0] is not None and p.status.container_statuses[0].restart_count >= 2
        ),
        timeout=90,
    )
    last = found.status.container_statuses[0].last_state.terminated
    assert last is not None and last.exit_code == 137  # killed by the kubelet after the probe failed
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=unhealthy").items
    assert any(e.reason == "Unhealthy" and "Liveness probe failed" in e.message for e in events)


def test_the_termination_message_is_reported(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("quitter", "printf 'migration failed: boom' > /dev/termination-log; exit 3"))
    found = wait_pod(core, ns, "quitter", "terminated", terminated)
    state = found.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.message) == (3, "migration failed: boom")


def pinned_containerd_version() -> str:
    """The containerd version tools/containerd/go.mod builds, without its ``v``."""
    text = (tools.REPO / "tools" / "containerd" / "go.mod").read_text()
    match = re.search(r"^\s*github\.com/containerd/containerd/v2 v(\S+)", text, re.M)
    assert match, "github.com/containerd/containerd/v2 not found in tools/containerd/go.mod"
    return match.group(1)


def kubelet_metric(bed: NodeBed, name: str) -> float:
    """One unlabelled sample of the kubelet's /metrics (apiserver -> kubelet proxy); 0 when absent."""
    assert bed.cluster is not None and bed.node is not None
    text = bed.cluster.kubectl("get", "--raw", f"/api/v1/nodes/{bed.node.name}/proxy/metrics").stdout
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")]
    return values[0] if values else 0.0


def test_container_events_reach_the_kubelet_so_an_exit_is_seen_without_the_1s_relist(
    bed: NodeBed, core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    """EventedPLEG: containerd's CRI event stream, not the once-a-second relist, tells the kubelet a
    container exited — what lets the operator act on a step's end at once (issue 18)."""
    seen = kubelet_metric(bed, "kubelet_evented_pleg_connection_latency_seconds_count")
    core.create_namespaced_pod(ns, pod("brief", "exit 0"))
    wait_pod(core, ns, "brief", "terminated", terminated)
    assert kubelet_metric(bed, "kubelet_evented_pleg_connection_success_count") >= 1  # the stream is open
    assert kubelet_metric(bed, "kubelet_evented_pleg_connection_latency_seconds_count") > seen  # events arrive
    assert kubelet_metric(bed, "kubelet_evented_pleg_connection_error_count") == 0


def test_after_the_bed_stops_nothing_is_left(bed: NodeBed) -> None:
    """Runs last: stops the bed and checks processes, mounts, cgroups, the bridge and the namespaces."""
    assert bed.node is not None
    cgroup, mount_ns, network_inode = bed.node.cgroup, bed.mount_ns, bed.network_inode
    assert node_module.cgroup_mounts() and any((m / cgroup).is_dir() for m in node_module.cgroup_mounts())
    assert netns.processes_in(network_inode) and netns.processes_in(mount_ns, "mnt")  # there before the stop
    # pinned: a freed namespace's number goes to the next one made (another worker's pod sandbox)
    with netns.pinned(network_inode), netns.pinned(mount_ns, "mnt"):
        started = time.monotonic()
        left = bed.stop()  # killed processes (a shim, a container) may take a moment to exit under load
        if left:
            procs.wait_until(
                lambda: not bed.leftovers(), 30, f"the stopped bed's processes to exit: {left}", interval=0.5
            )
        assert bed.leftovers() == []
        report("bed stop s", round(time.monotonic() - started, 1))
        assert netns.processes_in(network_inode) == []  # no process (nor thread) keeps the namespace: once
        assert netns.processes_in(mount_ns, "mnt") == []  # unpinned it is gone, with albed0 and the pods' bridge
        assert node_module.leftovers(marker=str(bed.workdir), cgroup_glob=cgroup, network_inode=network_inode) == []
    assert not any((m / cgroup).exists() for m in node_module.cgroup_mounts())
    assert host_state() == HOST_BEFORE  # interfaces, iptables rules, sysctls of the machine: unchanged
