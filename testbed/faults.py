"""Inject faults for real on the test bed: kill a step's process, kill pg_dump mid-stream,
corrupt or delete a backup object, wait for a run to reach a point worth breaking.

Used by tests/faults/. Everything here acts on real things: a container's first process
(``containerStatuses[].containerID`` is ``containerd://<id>``: the process of cgroup ``<id>``
whose parent, the runc shim, is outside it), that process's children (found in ``/proc``), objects in
the S3 server (through its API). Must not: be imported by the operator.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client

from testbed.cluster import Cluster

STEP_LABEL = "alembic-operator.dev/step"
RUN_LABEL = "alembic-operator.dev/run"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as error:  # noqa: BLE001 - a probe may fail while things start
            last_error, value = error, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


# --------------------------------------------------------------------------- pods and processes


def step_pods(cluster: Cluster, namespace: str, run: str, step: str) -> list[dict[str, Any]]:
    """The Pods of ``run``'s ``step`` Jobs (every attempt), oldest first, as the API's JSON.

    Through the API client, not ``kubectl``: fault tests poll this every 0.1 s while a step starts,
    and a kubectl process per poll costs the CPU the bed's other workers are waiting for."""
    selector = f"{RUN_LABEL}={run},{STEP_LABEL}={step}"
    with cluster.api_client() as api:
        response = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=selector, _preload_content=False
        )
        pods = json.loads(response.data)["items"]
    return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])


def container_pid(pod: dict[str, Any], container: str = "step") -> int | None:
    """The pid of a running container's process (``containerID: process://<pid>``), or None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != container or "running" not in (status.get("state") or {}):
            continue
        cid = status.get("containerID") or ""
        if cid.startswith("process://"):
            return int(cid[len("process://") :])
        if cid.startswith("containerd://"):
            return containerd_pid(cid[len("containerd://") :])
    return None


def containerd_pid(container_id: str) -> int | None:
    """The first process of a real node's container: of the processes in cgroup ``<container_id>``
    (below the node's cgroupRoot, :data:`testbed.node.CGROUP_PREFIX`), the one whose parent is not."""
    from testbed.node import CGROUP_PREFIX, cgroup_mounts

    for mount in cgroup_mounts():
        for path in mount.glob(f"{CGROUP_PREFIX}*/kubepods*/**/{container_id}"):
            try:
                pids = {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                continue
            for pid in sorted(pids):
                info = _ppid_and_comm(pid)
                if info is not None and info[0] not in pids:
                    return pid
            return None  # the hierarchies hold the same tree: the first that has it is enough
    return None


def wait_for_step_pid(cluster: Cluster, namespace: str, run: str, step: str, timeout: float = 90) -> int:
    """The pid of the running container of ``run``'s ``step`` Pod, once it runs."""

    def probe() -> int | None:
        for pod in reversed(step_pods(cluster, namespace, run, step)):
            pid = container_pid(pod)
            if pid and alive(pid):
                return pid
        return None

    return wait_for(f"the {step} pod of {namespace}/{run} to run", probe, timeout=timeout, interval=0.1)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ppid_and_comm(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), comm


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every live descendant of ``pid``."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _ppid_and_comm(int(entry))
            if info is not None:
                table[int(entry)] = info
    found, frontier = [], {pid}
    while frontier:
        children = [(p, comm) for p, (ppid, comm) in table.items() if ppid in frontier]
        found.extend(c for c in children if alive(c[0]))
        frontier = {p for p, _ in children}
    return found


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``: cheap enough to poll every few ms)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def wait_for_child(pid: int, name: str, *, with_arg: str = "", timeout: float = 60, interval: float = 0.002) -> int:
    """The pid of a direct child of ``pid`` named ``name`` (e.g. ``pg_dump``) with an argument starting
    ``with_arg`` (e.g. ``--format``: the dump itself, not a ``pg_dump --version`` probe)."""

    def probe() -> int | None:
        for child in children(pid):
            if comm(child) == name and (not with_arg or any(a.startswith(with_arg) for a in cmdline(child))):
                return child
        return None

    return wait_for(f"a {name} {with_arg} process under pid {pid}", probe, timeout=timeout, interval=interval)


def freeze_after(pid: int, written: int, *, step: float = 0.01, timeout: float = 60) -> int:
    """Let ``pid`` run until it has written at least ``written`` bytes, then leave it SIGSTOPped.

    Deterministic "mid-stream": the process is stopped at once, then released in
    short slices until it has written enough. Returns the bytes written so far.
    AssertionError if it ends first. The caller kills it or sends SIGCONT.
    """
    deadline = time.monotonic() + timeout
    os.kill(pid, signal.SIGSTOP)
    while True:
        done = bytes_written(pid)
        if done >= written:
            return done
        if not alive(pid):
            raise AssertionError(f"pid {pid} ended after writing {done} bytes, before {written}")
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGCONT)
            raise AssertionError(f"pid {pid} wrote only {done} bytes in {timeout:.0f}s")
        os.kill(pid, signal.SIGCONT)
        time.sleep(step)
        os.kill(pid, signal.SIGSTOP)


def bytes_written(pid: int) -> int:
    """Bytes the process has written so far (``wchar`` of /proc/PID/io); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to one process (not its group): what an OOM kill does to a single process."""
    os.kill(pid, sig)


def wait_gone(pid: int, timeout: float = 30) -> None:
    wait_for(f"pid {pid} to end", lambda: not alive(pid), timeout=timeout, interval=0.05)


# --------------------------------------------------------------------------- S3 objects


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def flip_byte(client: Any, bucket: str, key: str, offset: int | None = None) -> int:
    """Flip one byte of an object in place (same size; the middle by default); returns the offset."""
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert body, f"s3://{bucket}/{key} is empty"
    at = len(body) // 2 if offset is None else offset
    body[at] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    return at


def delete_object(client: Any, bucket: str, key: str) -> None:
    client.delete_object(Bucket=bucket, Key=key)


# --------------------------------------------------------------------------- runs


def run_phase(app: Any, name: str) -> str | None:
    return (app.get(name).get("status") or {}).get("phase")


def wait_for_backup(app: Any, name: str, timeout: float = 120) -> str:
    """The dump's URI, as soon as the run recorded its backup (it is migrating then)."""
    return wait_for(
        f"{name} to record its backup",
        lambda: ((app.get(name).get("status") or {}).get("backup") or {}).get("uri"),
        timeout=timeout,
        interval=0.2,
    )


def fill(database: Any, rows: int) -> None:
    """A bulky side table, so pg_dump streams for a while (a fault can hit it mid-stream)."""
    database.execute(
        "CREATE TABLE fault_filler (id bigint PRIMARY KEY, payload text NOT NULL);"
        f"INSERT INTO fault_filler SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) "
        f"FROM generate_series(1, {rows}) g;"
    )
