"""The process kubelet: the emulated node the test bed had before its real one (RETIRED, issue 17).

No test and no ``make`` target uses it: every pod of the suites runs on :mod:`testbed.node`.
It stays only while ``bench/bed.py`` still starts it and some tests import :class:`ProcessKubelet`
for type hints; delete it (and :func:`testbed.pytest_cluster.default_images`) with them.

It runs as its own process (``python -m testbed.kubelet``, started by
:class:`ProcessKubelet`) so a test can kill it like a crashed node agent, and
talks to the real apiserver with the admin kubeconfig (a real kubelet would use
a ``system:node:<name>`` identity). What it does, in order:

1. registers a Node (Ready, capacity, addresses) and heartbeats its Ready
   condition and its Lease in ``kube-node-lease`` every 10 s;
2. acts as the scheduler (no kube-scheduler runs): a Pod with no
   ``spec.nodeName`` and the default scheduler name gets a Binding to this node;
3. runs each Pod bound to this node as local processes, one process group per
   container: init containers one after the other, then all main containers in
   parallel; each container's stdout and stderr go to
   ``<root>/logs/<namespace>_<pod>_<container>.log``;
4. writes the Pod status back through the status subresource, as a kubelet
   does: Pending, Running, then Succeeded or Failed per ``restartPolicy``, with
   exit codes, reasons and the termination message;
5. when a Pod is deleted, SIGTERMs its process groups, SIGKILLs them after the
   grace period (capped at :data:`GRACE_CAP` seconds), writes the final status
   and removes the Pod with grace 0.

Emulation, documented where it differs from a real kubelet:

- Images map to local commands through a JSON table (``images.json``):
  ``{image: {"env": {...}, "workingDir": dir, "entrypoint": [...], "args": [...]}}``;
  ``env`` values may use ``$VAR``/``${VAR}`` of the kubelet's own environment
  (``"PATH": "/x/bin:$PATH"``); ``entrypoint``/``args`` stand for the image's
  ENTRYPOINT/CMD. An image matches exactly, then without its tag or digest.
  A missing image leaves the Pod Pending with ErrImagePull/ImagePullBackOff;
  the table is re-read when it changes, so registering the image later starts the Pod.
- A process cannot see ``/var/run/secrets/kubernetes.io/serviceaccount``: when
  the Pod has a projected ServiceAccount token volume (added by the
  ServiceAccount admission plugin unless automount is off), the token,
  ``ca.crt`` and ``namespace`` go to ``<root>/<pod-uid>/serviceaccount/`` and a
  kubeconfig built from them to ``<root>/<pod-uid>/kubeconfig``; the process
  gets ``KUBECONFIG`` and ``KUBERNETES_SERVICE_HOST=127.0.0.1``/``_PORT``.
- ``/dev/termination-log`` is ``$TERMINATION_MESSAGE_PATH``
  (``<root>/<pod-uid>/<container>/termination-log``), always set by the kubelet.
- The Pod IP and host IP are 127.0.0.1; there is no network isolation, no
  volumes other than the token, no probes (a running container is ready), no
  resource limits, no ``kubectl logs``/``exec`` (read :func:`pod_log_path`).
- The working directory is ``workingDir`` of the container, else of the image
  table entry, else a fresh ``<root>/<pod-uid>/<container>/work``; a missing
  directory is not created (StartError), so the host is never littered.
- Restarts (``OnFailure``, ``Always``) back off 1, 2, 4 ... up to 10 s, not 5 minutes.
- A restarted kubelet does not know the processes of the previous one: it kills
  those still alive (pid files) and marks Pods that had started as Failed with
  reason ``NodeLost``; Pods that never started are run.
- Sidecar init containers (``restartPolicy: Always`` on an init container) are
  run like ordinary init containers (they would block).

Container mode (``{"runtime": "runc", "image": "<built image>", "workingDir": dir, "env": {...}}``
in the table, :meth:`ProcessKubelet.register_image` with ``runtime="runc"``): the Pod's
container runs from an image ``make image`` built (:mod:`testbed.containers`, ``runc``,
root needed) instead of as a local process, so it is much closer to a real kubelet:

- command/args over the image's ENTRYPOINT/CMD, the image's ENV under the entry's ``env``
  under the container's env (``secretKeyRef`` etc. resolved as above), working dir from
  the container, else the entry, else the image's WORKDIR;
- user and group from ``runAsUser``/``runAsGroup`` (container over pod), else the image's
  USER; ``runAsNonRoot`` with uid 0 is a CreateContainerConfigError; the root is read-only
  when ``readOnlyRootFilesystem`` (no implicit tmpfs: mount an emptyDir at /tmp);
- emptyDir volumes are host dirs (mode 0777) under ``<root>/<pod-uid>/volumes/empty-dir/``,
  bind-mounted at their ``volumeMounts``; the projected token volume's files are
  bind-mounted read-only at its mount path (normally
  /var/run/secrets/kubernetes.io/serviceaccount), so in-cluster config works: no
  KUBECONFIG, no TERMINATION_MESSAGE_PATH; the termination message file is bind-mounted
  at ``terminationMessagePath`` (default /dev/termination-log); other volume types are
  not mounted (a warning in the kubelet's log);
- host network (loopback services reachable), own mount/PID/IPC/UTS namespaces, hostname
  the Pod's name; a table entry whose image was not built fails to pull (ErrImagePull);
- deletion sends SIGTERM with ``runc kill``, SIGKILL after the grace period, then ``runc
  delete``; output goes to the same log files; containerID is ``runc://<id>``.

This module must not be imported by the operator; only tests and fixtures use it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import urllib3
from kubernetes.client.rest import ApiException

from testbed import cluster, containers, procs, tools

logger = logging.getLogger("testbed.kubelet")

NODE_NAME = "bed-node"
GRACE_CAP = 5.0
"""Seconds a deleted Pod's processes get between SIGTERM and SIGKILL (a real kubelet: up to 30 s)."""
HEARTBEAT_INTERVAL = 10.0
POLL_INTERVAL = 0.1
"""Seconds between checks of a running Pod's processes."""
RETRY_INTERVAL = 1.0
"""Seconds between attempts to pull a missing image or resolve a missing Secret/ConfigMap."""
MAX_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
POD_IP = "127.0.0.1"
TOKEN_EXPIRATION = 3607
"""Seconds, as a real kubelet asks; the apiserver extends such tokens to a year."""
MERGE_PATCH = "application/merge-patch+json"
STATUS_ATTEMPTS = 12
"""Tries of one status update (backing off up to 2 s) before the next change supersedes it."""
STARTED, CONFIG_ERROR, START_ERROR = "started", "config-error", "start-error"
"""Outcomes of starting a container's process."""
TERMINAL_PHASES = ("Succeeded", "Failed")
OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
HOST_ENV = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
"""Variables the processes inherit from the kubelet (a container has its image's instead)."""
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# -- pure helpers ----------------------------------------------------------------------------


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    """The current time as a MicroTime (Lease ``renewTime``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp from the API."""
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` like Kubernetes does in command, args and env values.

    ``$$`` is an escaped ``$``; an undefined ``$(VAR)`` stays as written
    (k8s.io/kubernetes/third_party/forked/golang/expansion).
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(mapping.get(name, f"$({name})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def expand_shell_vars(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR``/``${VAR}`` of the image table against the kubelet's environment."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), ""), text)


def image_candidates(image: str) -> list[str]:
    """Table keys to try for an image: as written, then without digest and tag."""
    candidates = [image]
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if name not in candidates:
        candidates.append(name)
    return candidates


def exit_code_of(returncode: int) -> int:
    """A container exit code: 128 + signal for a killed process, like a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def log_file_name(namespace: str, pod: str, container: str) -> str:
    return f"{namespace}_{pod}_{container}.log"


def pod_log_path(root: Path, namespace: str, pod: str, container: str | None = None) -> Path:
    """Where a container's output goes; ``container`` may be omitted for single-container pods."""
    logs = root / "logs"
    if container is not None:
        return logs / log_file_name(namespace, pod, container)
    found = sorted(logs.glob(log_file_name(namespace, pod, "*")))
    if len(found) != 1:
        raise LookupError(f"pod {namespace}/{pod} has {len(found)} container logs in {logs}; name the container")
    return found[0]


def process_start_time(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a live process, to tell it from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def kill_leftovers(root: Path) -> list[int]:
    """SIGKILL the process groups recorded in pid files under ``root`` that are still alive.

    Used when a kubelet starts (the processes of a previous one are orphans) and
    by :meth:`ProcessKubelet.stop`, so a killed kubelet never leaks processes.
    """
    killed = []
    for pid_file in root.glob("*/*/pid"):
        try:
            pid_text, start = pid_file.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if process_start_time(pid) == start:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        pid_file.unlink(missing_ok=True)
    for runc_file in root.glob("*/*/runc"):  # container mode: the container outlives its `runc run`
        try:
            record = json.loads(runc_file.read_text())
            containers.remove(record["id"], record["runDir"])
        except (OSError, ValueError, KeyError):
            pass
        runc_file.unlink(missing_ok=True)
    return killed


# -- the image table -------------------------------------------------------------------------


class ImageTable:
    """The image-to-local-command table, re-read whenever its file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._version: tuple[int, int, int] | None = None
        self._table: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def lookup(self, image: str) -> dict[str, Any] | None:
        with self._lock:
            try:
                stat = self.path.stat()
                version = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
                if version != self._version:
                    self._table = json.loads(self.path.read_text())
                    self._version = version
            except (OSError, ValueError) as error:
                logger.warning("cannot read image table %s: %s", self.path, error)
            for candidate in image_candidates(image):
                if candidate in self._table:
                    return dict(self._table[candidate])
            return None


class ConfigError(Exception):
    """A container cannot be configured yet (CreateContainerConfigError); retried."""


class StartError(Exception):
    """A container's process cannot be started (StartError, exit code 128)."""


# -- one container ---------------------------------------------------------------------------


@dataclasses.dataclass
class Container:
    """The runtime state of one container of a Pod, turned into a containerStatus."""

    spec: dict[str, Any]
    init: bool
    state: dict[str, Any] = dataclasses.field(default_factory=lambda: {"waiting": {"reason": "PodInitializing"}})
    last_state: dict[str, Any] = dataclasses.field(default_factory=dict)
    restart_count: int = 0
    popen: subprocess.Popen[bytes] | None = None
    runc: containers.Container | None = None
    """Container mode: the runc container (``popen`` is its ``runc run`` process)."""
    log_offset: int = 0
    done: bool = False
    """Terminated for good (no restart coming)."""
    next_start: float = 0.0
    backoff: float = 1.0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return "running" in self.state

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": f"process://{self.spec.get('image', '')}",
            "ready": self.running and not self.init,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.runc is not None:
            status["imageID"] = f"runc://{self.spec.get('image', '')}"
            status["containerID"] = f"runc://{self.runc.id}"
        elif self.popen is not None:
            status["containerID"] = f"process://{self.popen.pid}"
        return status


# -- one Pod ---------------------------------------------------------------------------------


class PodWorker(threading.Thread):
    """Runs one Pod bound to this node, from Pending to its end or its deletion."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.uid = str(meta["uid"])
        self.namespace = str(meta["namespace"])
        self.pod_name = str(meta["name"])
        self.deleting = threading.Event()
        self.gone = threading.Event()
        self.finished = threading.Event()
        self.dir = kubelet.root / self.uid
        spec = pod["spec"]
        self.restart_policy = str(spec.get("restartPolicy", "Always"))
        self.init_containers = [Container(c, init=True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c, init=False) for c in spec.get("containers") or []]
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time = (pod.get("status") or {}).get("startTime") or now()
        self.initialized = not self.init_containers
        self.sandbox_ready = False
        self.kubeconfig: Path | None = None
        self._last_status: dict[str, Any] | None = None
        self._dirty = False
        """The last status update failed; retried at the next sleep."""
        self._transitions: dict[str, str] = {}

    # The dispatcher calls these from the watch thread.

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    def object_gone(self) -> None:
        self.gone.set()
        self.deleting.set()

    # The Pod's life.

    def run(self) -> None:
        try:
            self._live()
        except Exception:
            logger.exception("pod %s/%s: worker failed", self.namespace, self.pod_name)
            self._kill_all()
            if not self.gone.is_set():
                self.phase, self.reason, self.message = "Failed", "KubeletError", "process kubelet error; see its log"
                self._push_status()
        finally:
            self._kill_all()
            if self.deleting.is_set() and not self.gone.is_set():
                self._finish_deletion()
            self.finished.set()

    def _live(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._push_status()
        if not self._wait_for_images():
            return
        while not self._project_token():
            if not self._sleep(RETRY_INTERVAL):
                return
        self.sandbox_ready = True
        for container in self.init_containers:
            if not self._run_init_container(container):
                return
        self.initialized = True
        self._run_main_containers()

    def _interrupted(self) -> bool:
        """True when the Pod is being deleted or has passed its activeDeadlineSeconds."""
        if self.deleting.is_set():
            return True
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is not None and time.time() > parse_time(self.start_time) + float(deadline):
            self._kill_all()
            self.phase, self.reason = "Failed", "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            self._push_status()
            return True
        return False

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless interrupted; False when the Pod must stop. Retries a failed status update."""
        if self._dirty:
            self._push_status()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._interrupted():
                return False
            self.deleting.wait(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        return not self._interrupted()

    def _wait_for_images(self) -> bool:
        """Like pulling: a Pod whose image is not in the table stays Pending and retries."""
        attempts = 0
        while True:
            missing = [
                c
                for c in self.init_containers + self.containers
                if self.kubelet.image_problem(c.spec.get("image", "")) is not None
            ]
            if not missing:
                for container in self.init_containers + self.containers:
                    container.state = {
                        "waiting": {
                            "reason": "PodInitializing"
                            if not self.initialized or container.init
                            else "ContainerCreating"
                        }
                    }
                return True
            for container in missing:
                image = container.spec.get("image", "")
                if attempts == 0:
                    container.state = {
                        "waiting": {
                            "reason": "ErrImagePull",
                            "message": (f'failed to pull image "{image}": {self.kubelet.image_problem(image)}'),
                        }
                    }
                else:
                    container.state = {
                        "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
                    }
            self._push_status()
            attempts += 1
            if not self._sleep(RETRY_INTERVAL):
                return False

    def _project_token(self) -> bool:
        """Write the ServiceAccount token files and a kubeconfig, if the Pod mounts a token.

        False (retried, containers stay ContainerCreating) when the token cannot be had yet.
        """
        if not any(
            source.get("serviceAccountToken")
            for volume in self.pod["spec"].get("volumes") or []
            for source in (volume.get("projected") or {}).get("sources") or []
        ):
            return True
        service_account = self.pod["spec"].get("serviceAccountName") or "default"
        request = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(
                audiences=[],
                expiration_seconds=TOKEN_EXPIRATION,
                bound_object_ref=kubernetes.client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=self.pod_name, uid=self.uid
                ),
            )
        )
        try:
            response = self.kubelet.core.create_namespaced_service_account_token(
                service_account, self.namespace, request
            )
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            for container in self.init_containers + self.containers:
                container.state = {
                    "waiting": {
                        "reason": "ContainerCreating",
                        "message": (
                            f"MountVolume.SetUp failed: cannot get a token for ServiceAccount {service_account}: "
                            f"{getattr(error, 'status', '')} {getattr(error, 'reason', error)}"
                        ),
                    }
                }
            self._push_status()
            return False
        sa_dir = self.dir / "serviceaccount"
        sa_dir.mkdir(parents=True, exist_ok=True)
        (sa_dir / "token").write_text(response.status.token)
        (sa_dir / "ca.crt").write_bytes(self.kubelet.ca_pem)
        (sa_dir / "namespace").write_text(self.namespace)
        # The equivalent of the in-cluster config a real Pod builds from the mounted files.
        self.kubeconfig = cluster.write_kubeconfig(
            self.dir / "kubeconfig",
            server=self.kubelet.server,
            ca_file=sa_dir / "ca.crt",
            token=response.status.token,
            namespace=self.namespace,
            user=f"system:serviceaccount:{self.namespace}:{service_account}",
        )
        return True

    def _run_init_container(self, container: Container) -> bool:
        """Run one init container to success; False when the Pod ends instead."""
        while True:
            result = self._start(container)
            if result == CONFIG_ERROR:
                if not self._sleep(RETRY_INTERVAL):
                    return False
                continue
            self._push_status()
            if result == STARTED:
                while container.popen is not None and container.popen.poll() is None:
                    if not self._sleep(POLL_INTERVAL):
                        return False
                code = self._reap(container)
            else:
                code = 128
            if code == 0:
                container.done = True
                self._push_status()
                return True
            if self.restart_policy == "Never":
                container.done = True
                self.phase = "Failed"
                self._push_status()
                return False
            self._push_status()
            if not self._sleep(self._next_backoff(container)):
                return False
            self._restarting(container)

    def _run_main_containers(self) -> None:
        """Run all main containers in parallel, restarting them per restartPolicy, until all are done."""
        for container in self.containers:
            container.next_start = 0.0
        while True:
            changed = False
            for container in self.containers:
                if container.done:
                    continue
                if container.running and container.popen is not None and container.popen.poll() is not None:
                    self._after_exit(container, self._reap(container))
                    changed = True
                elif not container.running and time.monotonic() >= container.next_start:
                    if "terminated" in container.state:
                        self._restarting(container)
                    result = self._start(container)
                    if result == CONFIG_ERROR:
                        container.next_start = time.monotonic() + RETRY_INTERVAL
                    elif result == START_ERROR:
                        self._after_exit(container, 128)
                    changed = True
            if all(c.done for c in self.containers):
                failed = any(c.state["terminated"]["exitCode"] != 0 for c in self.containers)
                self.phase = "Failed" if failed else "Succeeded"
                self._push_status()
                return
            if any(c.running for c in self.containers) or any(c.restart_count for c in self.containers):
                self.phase = "Running"
            if changed:
                self._push_status()
            if not self._sleep(POLL_INTERVAL):
                return

    def _after_exit(self, container: Container, code: int) -> None:
        """Per restartPolicy: the container is done, or restarts after a back-off."""
        if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and code == 0):
            container.done = True
        else:
            container.next_start = time.monotonic() + self._next_backoff(container)

    def _next_backoff(self, container: Container) -> float:
        delay = container.backoff
        container.backoff = min(container.backoff * 2, 10.0)
        return delay

    def _restarting(self, container: Container) -> None:
        container.last_state = {"terminated": container.state["terminated"]} if "terminated" in container.state else {}
        container.restart_count += 1

    # One container process.

    def _start(self, container: Container) -> str:
        """Start the container's process: STARTED, CONFIG_ERROR (waiting, retried) or START_ERROR (exit 128)."""
        cdir = self.dir / container.name
        cdir.mkdir(parents=True, exist_ok=True)
        message_path = cdir / "termination-log"
        message_path.write_bytes(b"")
        image = self.kubelet.images.lookup(container.spec.get("image", "")) or {}
        if image.get("runtime") == "runc":
            return self._start_runc(container, image, cdir, message_path)
        try:
            env, container_env = self.kubelet.resolver.environment(self, container.spec, image, message_path)
            argv = command_line(container.spec, image, container_env)
            workdir = Path(container.spec.get("workingDir") or image.get("workingDir") or cdir / "work")
            if not container.spec.get("workingDir") and not image.get("workingDir"):
                workdir.mkdir(exist_ok=True)
            executable = shutil.which(argv[0], path=env.get("PATH", DEFAULT_PATH)) if "/" not in argv[0] else argv[0]
            if not executable:
                raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
            if not workdir.is_dir():
                raise StartError(f'chdir to cwd ("{workdir}") set in config.json failed: no such file or directory')
        except (ConfigError, ApiException, urllib3.exceptions.HTTPError) as error:  # retried, like a kubelet
            container.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)[:1024]}}
            self._push_status()
            return CONFIG_ERROR
        except StartError as error:
            stamp = now()
            container.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(error),
                    "startedAt": "1970-01-01T00:00:00Z",
                    "finishedAt": stamp,
                }
            }
            container.popen = None
            self._push_status()
            return START_ERROR
        log_path = self.kubelet.log_path(self.namespace, self.pod_name, container.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        container.log_offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            container.popen = subprocess.Popen(
                [executable, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        start = process_start_time(container.popen.pid) or "0"
        (cdir / "pid").write_text(f"{container.popen.pid} {start}\n")
        container.state = {"running": {"startedAt": now()}}
        logger.info(
            "pod %s/%s: started container %s (pid %d): %s",
            self.namespace,
            self.pod_name,
            container.name,
            container.popen.pid,
            argv,
        )
        return STARTED

    def _start_runc(self, container: Container, image: Mapping[str, Any], cdir: Path, message_path: Path) -> str:
        """Container mode: run the container from a built image under runc (see the module docstring)."""
        spec = container.spec
        try:
            built = containers.find_image(str(image["image"]))
            env, container_env = self.kubelet.resolver.environment(self, spec, image, message_path, container_mode=True)
            argv_spec = {
                "command": [expand(p, container_env) for p in spec.get("command") or []],
                "args": [expand(p, container_env) for p in spec.get("args") or []],
            }
            user = run_as(self.pod["spec"], spec, built.config.get("User"))
            uid, _gid = containers.lookup_user(built, user)
            context = {**(self.pod["spec"].get("securityContext") or {}), **(spec.get("securityContext") or {})}
            if context.get("runAsNonRoot") and uid == 0:
                raise ConfigError(
                    "container has runAsNonRoot and image will run as root "
                    f"(pod: {self.namespace}/{self.pod_name}, container: {container.name})"
                )
            mounts = self._volume_mounts(spec)
        except (ConfigError, ApiException, urllib3.exceptions.HTTPError) as error:
            container.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)[:1024]}}
            self._push_status()
            return CONFIG_ERROR
        except (containers.ContainerError, StartError) as error:
            return self._start_error(container, str(error))
        log_path = self.kubelet.log_path(self.namespace, self.pod_name, container.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        container.log_offset = log_path.stat().st_size if log_path.exists() else 0
        container_id = f"bed-{self.uid}-{container.name}-{container.restart_count}"[:128]
        run_dir = cdir / f"runc-{container.restart_count}"
        (cdir / "runc").write_text(json.dumps({"id": container_id, "runDir": str(run_dir)}))
        try:
            handle = containers.run_container(
                image=str(image["image"]),
                command=argv_spec["command"] or None,
                args=argv_spec["args"] or None,
                env=env,
                working_dir=spec.get("workingDir") or image.get("workingDir"),
                user=user,
                read_only_root=bool(context.get("readOnlyRootFilesystem")),
                tmp_tmpfs=False,
                mounts=mounts,
                hostname=self.pod_name[:63],
                log_path=log_path,
                termination_message_path=message_path,
                termination_message_container_path=spec.get("terminationMessagePath")
                or containers.DEFAULT_TERMINATION_MESSAGE_PATH,
                container_id=container_id,
                run_dir=run_dir,
            )
        except containers.ContainerError as error:
            (cdir / "runc").unlink(missing_ok=True)
            return self._start_error(container, str(error))
        container.runc = handle
        container.popen = handle.process
        start = process_start_time(handle.pid) or "0"
        (cdir / "pid").write_text(f"{handle.pid} {start}\n")
        container.state = {"running": {"startedAt": now()}}
        logger.info(
            "pod %s/%s: started container %s under runc (%s, image %s): %s",
            self.namespace,
            self.pod_name,
            container.name,
            container_id,
            image["image"],
            handle.argv,
        )
        return STARTED

    def _start_error(self, container: Container, message: str) -> str:
        container.state = {
            "terminated": {
                "exitCode": 128,
                "reason": "StartError",
                "message": message[:1024],
                "startedAt": "1970-01-01T00:00:00Z",
                "finishedAt": now(),
            }
        }
        container.popen = None
        container.runc = None
        self._push_status()
        return START_ERROR

    def _volume_mounts(self, spec: Mapping[str, Any]) -> list[tuple[Path, str, bool]]:
        """Container mode: emptyDir volumes as host dirs under the pod dir; the projected token's files."""
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        mounts: list[tuple[Path, str, bool]] = []
        for mount in spec.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                raise ConfigError(f'cannot find volume "{mount["name"]}" to mount into container')
            readonly = bool(mount.get("readOnly"))
            if "emptyDir" in volume:
                source = self.dir / "volumes" / "empty-dir" / volume["name"]
                if not source.is_dir():
                    source.mkdir(parents=True, exist_ok=True)
                    os.chmod(source, 0o777)  # as a kubelet makes them: any uid may write
                if mount.get("subPath"):
                    source = source / mount["subPath"]
                    source.mkdir(parents=True, exist_ok=True)
                    os.chmod(source, 0o777)
                mounts.append((source, mount["mountPath"], readonly))
            elif any(s.get("serviceAccountToken") for s in (volume.get("projected") or {}).get("sources") or []):
                mounts.append((self.dir / "serviceaccount", mount["mountPath"], True))
            else:
                logger.warning(
                    "pod %s/%s: volume %s is not supported in container mode; not mounted",
                    self.namespace,
                    self.pod_name,
                    volume["name"],
                )
        return mounts

    def _reap(self, container: Container) -> int:
        """Record the ended process as terminated; returns its exit code."""
        if container.popen is None:  # StartError: the state is already terminated
            return int(container.state["terminated"]["exitCode"])
        code = exit_code_of(container.popen.wait())
        if container.runc is not None:
            container.runc.kill("KILL")  # runc delete: the end of a container ends all its processes
            (self.dir / container.name / "runc").unlink(missing_ok=True)
        else:
            _killpg(container.popen.pid, signal.SIGKILL)  # the end of a container ends all its processes
        (self.dir / container.name / "pid").unlink(missing_ok=True)
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": container.state.get("running", {}).get("startedAt", now()),
            "finishedAt": now(),
            "containerID": f"runc://{container.runc.id}"
            if container.runc is not None
            else f"process://{container.popen.pid}",
        }
        if code > 128:
            terminated["signal"] = code - 128
        message = self._termination_message(container, code)
        if message:
            terminated["message"] = message
        container.state = {"terminated": terminated}
        logger.info("pod %s/%s: container %s exited with %d", self.namespace, self.pod_name, container.name, code)
        return code

    def _termination_message(self, container: Container, code: int) -> str:
        """The termination-log file, or the log tail for FallbackToLogsOnError on failure."""
        try:
            with open(self.dir / container.name / "termination-log", "rb") as file:
                message = file.read(MAX_MESSAGE_BYTES)
        except OSError:
            message = b""
        if not message and code != 0 and container.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            log_path = self.kubelet.log_path(self.namespace, self.pod_name, container.name)
            with open(log_path, "rb") as file:
                file.seek(container.log_offset)
                lines = file.read().splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
            message = b"".join(lines)[-FALLBACK_LOG_BYTES:]
        return message.decode(errors="replace")

    def _kill_all(self) -> None:
        """SIGTERM every running container, SIGKILL after the (capped) grace period."""
        running = [c for c in self.init_containers + self.containers if c.popen is not None and c.popen.poll() is None]
        if not running:
            return
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
        grace = min(float(grace if grace is not None else 30), GRACE_CAP)
        for container in running:
            if container.runc is not None:
                _runc_signal(container.runc, "TERM")
            else:
                _killpg(container.popen.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.popen.poll() is None for c in running):  # type: ignore[union-attr]
            time.sleep(0.05)
        for container in running:
            if container.runc is not None and container.popen.poll() is None:  # type: ignore[union-attr]
                container.runc.kill("KILL", timeout=5)
            self._reap(container)
            container.done = True

    def _finish_deletion(self) -> None:
        """Write the final status, then remove the Pod object like a kubelet does (grace 0)."""
        if self.phase not in TERMINAL_PHASES:
            started = [c for c in self.containers if "terminated" in c.state]
            failed = not started or any(c.state["terminated"]["exitCode"] != 0 for c in started)
            self.phase = "Failed" if failed else "Succeeded"
            for container in self.init_containers + self.containers:
                if "terminated" not in container.state:
                    container.state = {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "ContainerStatusUnknown",
                            "message": "The container could not be located when the pod was deleted",
                            "finishedAt": now(),
                            "startedAt": "1970-01-01T00:00:00Z",
                        }
                    }
            self._push_status()
        self.kubelet.force_delete(self.namespace, self.pod_name, self.uid)

    # Status.

    def _conditions(self) -> list[dict[str, Any]]:
        terminal = self.phase in TERMINAL_PHASES
        ready = not terminal and bool(self.containers) and all(c.running for c in self.containers)
        wanted = {
            "PodScheduled": (True, None),
            "PodReadyToStartContainers": (self.sandbox_ready and not terminal, None),
            "Initialized": (self.initialized, None if self.initialized else "ContainersNotInitialized"),
            "ContainersReady": (ready, None if ready else ("PodCompleted" if terminal else "ContainersNotReady")),
            "Ready": (ready, None if ready else ("PodCompleted" if terminal else "ContainersNotReady")),
        }
        conditions = []
        for kind, (status, reason) in wanted.items():
            value = "True" if status else "False"
            key = f"{kind}={value}"
            self._transitions.setdefault(key, now())
            self._transitions.pop(f"{kind}={'False' if status else 'True'}", None)
            condition = {
                "type": kind,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": self._transitions[key],
            }
            if reason:
                condition["reason"] = reason
            conditions.append(condition)
        foreign = [
            c for c in (self.pod.get("status") or {}).get("conditions") or [] if c.get("type") not in OWNED_CONDITIONS
        ]
        return conditions + foreign

    def _push_status(self) -> None:
        """Send the whole status with a merge patch (lists replaced), skipping unchanged ones."""
        if self.gone.is_set():
            return
        status: dict[str, Any] = {
            "phase": self.phase,
            "conditions": self._conditions(),
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "initContainerStatuses": [c.status() for c in self.init_containers],
            "containerStatuses": [c.status() for c in self.containers],
            "reason": self.reason,
            "message": self.message,
        }
        if status == self._last_status:
            return
        self._dirty = True
        for attempt in range(STATUS_ATTEMPTS):
            try:
                self.kubelet.core.patch_namespaced_pod_status(
                    self.pod_name, self.namespace, {"status": status}, _content_type=MERGE_PATCH, _preload_content=False
                )
                self._last_status = json.loads(json.dumps(status))
                self._dirty = False
                return
            except ApiException as error:
                if error.status == 404:
                    self.gone.set()
                    self.deleting.set()
                    self._dirty = False
                    return
                logger.warning(
                    "pod %s/%s: status update failed: %s %s", self.namespace, self.pod_name, error.status, error.body
                )
                if error.status and 400 <= error.status < 500 and error.status != 429:
                    self._dirty = False
                    return  # rejected: retrying the same status cannot help
            except (urllib3.exceptions.HTTPError, OSError) as error:  # the apiserver is unreachable for now
                logger.warning("pod %s/%s: status update failed: %s", self.namespace, self.pod_name, error)
            time.sleep(min(0.2 * 2**attempt, 2.0))


def _runc_signal(container: containers.Container, sig: str) -> None:
    """``runc kill <id> <sig>``: the container's first process gets it (not ``runc run`` itself)."""
    subprocess.run(
        [shutil.which("runc") or "runc", "--root", containers.RUNC_ROOT, "kill", container.id, sig],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )


def run_as(pod_spec: Mapping[str, Any], spec: Mapping[str, Any], image_user: str | None) -> str | None:
    """``uid[:gid]`` from runAsUser/runAsGroup (container over pod), falling back to the image's USER."""
    context = {**(pod_spec.get("securityContext") or {}), **(spec.get("securityContext") or {})}
    user, group = context.get("runAsUser"), context.get("runAsGroup")
    if user is None and group is None:
        return image_user or None
    image_name, _, image_group = (image_user or "0").partition(":")
    name = str(user) if user is not None else image_name
    if group is not None:
        return f"{name}:{group}"
    return name if user is not None else f"{name}:{image_group}" if image_group else name


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def command_line(spec: Mapping[str, Any], image: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The argv of a container: Kubernetes' command/args over the image's ENTRYPOINT/CMD."""
    command = [expand(part, env) for part in spec.get("command") or []]
    args = [expand(part, env) for part in spec.get("args") or []]
    if command:
        argv = command + args
    elif args:
        argv = list(image.get("entrypoint") or []) + args
    else:
        argv = list(image.get("entrypoint") or []) + list(image.get("args") or [])
    if not argv:
        raise StartError("no command specified: the Pod has no command and the image table entry no entrypoint")
    return argv


# -- environment -----------------------------------------------------------------------------


class EnvResolver:
    """Builds a container's environment as a kubelet does, from the API's Secrets and ConfigMaps."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet

    def environment(
        self,
        worker: PodWorker,
        spec: Mapping[str, Any],
        image: Mapping[str, Any],
        message_path: Path,
        *,
        container_mode: bool = False,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The process environment, and the container-defined part that ``$(VAR)`` may reference.

        In container mode the environment is what goes on top of the image's own (the table
        entry's ``env`` verbatim, then the container's); no KUBECONFIG and no
        TERMINATION_MESSAGE_PATH, since the token and the message file are where a Pod has them.
        """
        if container_mode:
            base = {str(name): str(value) for name, value in (image.get("env") or {}).items()}
        else:
            base = {name: os.environ[name] for name in HOST_ENV if name in os.environ}
            base["PATH"] = os.environ.get("PATH", DEFAULT_PATH)
            for name, value in (image.get("env") or {}).items():
                base[name] = expand_shell_vars(str(value), {**os.environ, **base})
        defined: dict[str, str] = {
            "HOSTNAME": worker.pod_name,
            "KUBERNETES_SERVICE_HOST": POD_IP,
            "KUBERNETES_SERVICE_PORT": str(self.kubelet.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.kubelet.port),
            "KUBERNETES_PORT": f"tcp://{POD_IP}:{self.kubelet.port}",
        }
        if worker.kubeconfig is not None and not container_mode:
            defined["KUBECONFIG"] = str(worker.kubeconfig)
        namespace = worker.namespace
        for source in spec.get("envFrom") or []:
            defined.update(self._env_from(namespace, source))
        for var in spec.get("env") or []:
            value = self._env_value(worker, var, defined)
            if value is not None:
                defined[str(var["name"])] = value
        if not container_mode:
            defined["TERMINATION_MESSAGE_PATH"] = str(message_path)
        return {**base, **defined}, defined

    def _env_from(self, namespace: str, source: Mapping[str, Any]) -> dict[str, str]:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref, data = source["configMapRef"], self._config_map(namespace, source["configMapRef"])
        else:
            ref, data = source["secretRef"], self._secret(namespace, source["secretRef"])
        if data is None:
            if ref.get("optional"):
                return {}
            kind = "configmap" if "configMapRef" in source else "secret"
            raise ConfigError(f'{kind} "{ref.get("name")}" not found')
        return {prefix + key: value for key, value in data.items() if ENV_NAME.match(prefix + key)}

    def _env_value(self, worker: PodWorker, var: Mapping[str, Any], defined: Mapping[str, str]) -> str | None:
        if "valueFrom" not in var or var.get("value") is not None:
            return expand(str(var.get("value") or ""), defined)
        source = var["valueFrom"]
        if "fieldRef" in source:
            return field_value(worker.pod, source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            return resource_value(worker.pod, var, source["resourceFieldRef"])
        kind, ref = (
            ("configmap", source["configMapKeyRef"])
            if "configMapKeyRef" in source
            else ("secret", source["secretKeyRef"])
        )
        data = self._config_map(worker.namespace, ref) if kind == "configmap" else self._secret(worker.namespace, ref)
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            if data is None:
                raise ConfigError(f'{kind} "{ref.get("name")}" not found')
            what = "ConfigMap" if kind == "configmap" else "Secret"
            raise ConfigError(f"couldn't find key {ref['key']} in {what} {worker.namespace}/{ref.get('name')}")
        return data[ref["key"]]

    def _config_map(self, namespace: str, ref: Mapping[str, Any]) -> dict[str, str] | None:
        try:
            config_map = self.kubelet.core.read_namespaced_config_map(ref["name"], namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(config_map.data or {})

    def _secret(self, namespace: str, ref: Mapping[str, Any]) -> dict[str, str] | None:
        try:
            secret = self.kubelet.core.read_namespaced_secret(ref["name"], namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {key: base64.b64decode(value).decode(errors="replace") for key, value in (secret.data or {}).items()}


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """The downward-API value of a ``fieldRef`` (the paths a kubelet supports for env)."""
    meta, spec = pod["metadata"], pod["spec"]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    values = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path not in values:
        raise ConfigError(f"unsupported fieldPath: {path}")
    return str(values[path] or "")


def resource_value(pod: Mapping[str, Any], var: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """A ``resourceFieldRef``: the quantity as written in the spec, else the node's capacity (approximate)."""
    name = ref.get("containerName")
    containers = pod["spec"].get("containers") or []
    container = next((c for c in containers if c["name"] == name), containers[0] if containers else {})
    kind, _, resource = str(ref["resource"]).partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if value is None:
        value = {"cpu": str(os.cpu_count() or 1), "memory": str(_memory_bytes())}.get(resource, "0")
    return str(value)


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024**3


# -- the kubelet -----------------------------------------------------------------------------


class Kubelet:
    """The node agent: registration, heartbeat, scheduling, and one :class:`PodWorker` per Pod."""

    def __init__(self, *, kubeconfig: Path, node: str, table: Path, root: Path) -> None:
        self.node = node
        self.root = root
        self.images = ImageTable(table)
        config = cluster.configuration_from_kubeconfig(kubeconfig)
        config.connection_pool_maxsize = 64
        self.api = kubernetes.client.ApiClient(config)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.server = str(config.host)
        self.port = int(self.server.rsplit(":", 1)[1].split("/")[0])
        self.ca_pem = Path(config.ssl_ca_cert).read_bytes()
        self.resolver = EnvResolver(self)
        self.workers: dict[str, PodWorker] = {}
        self.force_deleted: set[str] = set()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.root / "logs" / log_file_name(namespace, pod, container)

    def image_problem(self, image: str) -> str | None:
        """Why ``image`` cannot be "pulled" (not in the table; container mode: not built), or None."""
        entry = self.images.lookup(image)
        if entry is None:
            return (
                f"not in the process kubelet's image table {self.images.path} "
                "(add it with ProcessKubelet.register_image)"
            )
        if entry.get("runtime") == "runc":
            try:
                containers.find_image(str(entry.get("image") or image))
            except containers.ContainerError as error:
                return str(error)
        return None

    def run(self) -> None:
        """Register, then list and watch Pods until stopped; never dies of an API error."""
        self.root.mkdir(parents=True, exist_ok=True)
        killed = kill_leftovers(self.root)
        if killed:
            logger.warning("killed processes left by a previous kubelet: %s", killed)
        procs.wait_until(self._register_node, 60, "node registration", interval=1)
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        first = True
        while not self.stop_event.is_set():
            try:
                version = self._list(recover=first)
                first = False
                (self.root / "ready").write_text(self.node)
                self._watch(version)
            except Exception:
                logger.exception("pod list/watch failed; re-listing")
                self.stop_event.wait(1)

    def shutdown(self) -> None:
        """Stop: kill every process (the Pods' statuses stay; a new kubelet marks them NodeLost)."""
        self.stop_event.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.gone.set()  # no status writes any more
            worker.deleting.set()
        for worker in workers:
            worker.join(GRACE_CAP + 2)
        kill_leftovers(self.root)

    # Node.

    def _register_node(self) -> bool:
        labels = {
            "kubernetes.io/hostname": self.node,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "process-kubelet",
        }
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node, "labels": labels}, "spec": {}}
        try:
            self.core.create_node(body, _preload_content=False)
        except ApiException as error:
            if error.status != 409:
                raise
        version = kubernetes.client.VersionApi(self.api).get_code().git_version
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{_memory_bytes() // 1024}Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": POD_IP}, {"type": "Hostname", "address": self.node}],
            "nodeInfo": {
                "machineID": "process-kubelet",
                "systemUUID": "process-kubelet",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "osImage": "process kubelet (testbed)",
                "containerRuntimeVersion": "process://1",
                "kubeletVersion": version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "conditions": self._node_conditions(),
        }
        self.core.patch_node_status(self.node, {"status": status}, _content_type=MERGE_PATCH, _preload_content=False)
        return True

    def _node_conditions(self) -> list[dict[str, Any]]:
        stamp = now()
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHasSufficient{kind[:-8]}",
                "message": "process kubelet",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "process kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        return conditions

    def _heartbeat(self) -> None:
        """Renew the node Lease and the Ready condition, so the node never looks lost."""
        coordination = kubernetes.client.CoordinationV1Api(self.api)
        while not self.stop_event.is_set():
            try:
                try:
                    coordination.patch_namespaced_lease(
                        self.node,
                        "kube-node-lease",
                        {"spec": {"renewTime": micro_now()}},
                        _content_type=MERGE_PATCH,
                        _preload_content=False,
                    )
                except ApiException as error:
                    if error.status != 404:
                        raise
                    coordination.create_namespaced_lease(
                        "kube-node-lease",
                        {
                            "metadata": {"name": self.node},
                            "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": micro_now()},
                        },
                        _preload_content=False,
                    )
                self.core.patch_node_status(
                    self.node,
                    {"status": {"conditions": self._node_conditions()}},
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                )
            except Exception:
                logger.exception("heartbeat failed")
            self.stop_event.wait(HEARTBEAT_INTERVAL)

    # Pods.

    def _list(self, *, recover: bool) -> str:
        response = self.core.list_pod_for_all_namespaces(_preload_content=False)
        listing = json.loads(response.data)
        pods = listing.get("items") or []
        seen = set()
        for pod in pods:
            seen.add(pod["metadata"]["uid"])
            if recover and self._lost(pod):
                continue
            self._handle("MODIFIED", pod)
        with self._lock:
            vanished = [worker for uid, worker in self.workers.items() if uid not in seen]
        for worker in vanished:
            self._handle("DELETED", worker.pod)
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> None:
        """Follow Pod events from ``version``; returns on expiry (410) so the caller re-lists."""
        while not self.stop_event.is_set():
            response = self.core.list_pod_for_all_namespaces(
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=60,
                _preload_content=False,
                _request_timeout=(10, 90),
            )  # a hung connection must not stall us
            try:
                for line in _lines(response):
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:
                            return
                        raise RuntimeError(f"watch error: {obj}")
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._handle(event["type"], obj)
                    if self.stop_event.is_set():
                        return
            finally:
                response.close()
                response.release_conn()

    def _handle(self, kind: str, pod: dict[str, Any]) -> None:
        """Dispatch one Pod event; errors are logged, never raised into the watch."""
        try:
            self._dispatch(kind, pod)
        except Exception:
            logger.exception(
                "handling %s of pod %s/%s failed", kind, pod["metadata"].get("namespace"), pod["metadata"].get("name")
            )

    def _dispatch(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = str(meta["uid"])
        node = spec.get("nodeName")
        if not node:
            if (
                kind != "DELETED"
                and not meta.get("deletionTimestamp")
                and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            ):
                self._bind(pod)
            return
        if node != self.node:
            return
        with self._lock:
            worker = self.workers.get(uid)
            if kind == "DELETED":
                self.workers.pop(uid, None)
                self.force_deleted.discard(uid)
                if worker is not None:
                    worker.object_gone()
                return
            if worker is not None:
                worker.update(pod)
                if worker.finished.is_set() and meta.get("deletionTimestamp"):
                    self._force_delete_once(pod)
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase in TERMINAL_PHASES or meta.get("deletionTimestamp"):
                if meta.get("deletionTimestamp"):
                    self._force_delete_once(pod)
                return
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
        worker.start()

    def _force_delete_once(self, pod: dict[str, Any]) -> None:
        uid = str(pod["metadata"]["uid"])
        if uid in self.force_deleted:
            return
        self.force_deleted.add(uid)
        threading.Thread(
            target=self.force_delete, daemon=True, args=(pod["metadata"]["namespace"], pod["metadata"]["name"], uid)
        ).start()

    def force_delete(self, namespace: str, name: str, uid: str) -> None:
        """Remove the Pod object with grace 0 (finalizers, e.g. the Job controller's, still hold it)."""
        body = kubernetes.client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=kubernetes.client.V1Preconditions(uid=uid)
        )
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body, grace_period_seconds=0, _preload_content=False)
        except ApiException as error:
            if error.status not in (404, 409):
                logger.warning("deleting pod %s/%s failed: %s %s", namespace, name, error.status, error.body)

    def _bind(self, pod: dict[str, Any]) -> None:
        """The scheduler's job: bind the Pod to this (the only) node."""
        meta = pod["metadata"]
        body = kubernetes.client.V1Binding(
            metadata=kubernetes.client.V1ObjectMeta(name=meta["name"], uid=meta["uid"]),
            target=kubernetes.client.V1ObjectReference(api_version="v1", kind="Node", name=self.node),
        )
        try:
            self.core.create_namespaced_pod_binding(meta["name"], meta["namespace"], body, _preload_content=False)
            logger.info("bound pod %s/%s to %s", meta["namespace"], meta["name"], self.node)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _lost(self, pod: dict[str, Any]) -> bool:
        """At start-up: mark a Pod of this node that had started as Failed (its processes are gone)."""
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        if spec.get("nodeName") != self.node or status.get("phase") in TERMINAL_PHASES:
            return False
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        if status.get("phase") != "Running" and not any(
            "running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {}) for s in statuses
        ):
            return False
        stamp = now()
        lost = {
            "terminated": {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "startedAt": stamp,
                "finishedAt": stamp,
                "message": "The container could not be located when the pod was terminated",
            }
        }

        def mark(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {
                    **s,
                    "ready": False,
                    "started": False,
                    "state": s["state"] if "terminated" in (s.get("state") or {}) else lost,
                }
                for s in entries
            ]

        patch = {
            "status": {
                "phase": "Failed",
                "reason": "NodeLost",
                "message": f"the process kubelet on {self.node} restarted; the Pod's processes are gone",
                "initContainerStatuses": mark(status.get("initContainerStatuses") or []),
                "containerStatuses": mark(status.get("containerStatuses") or []),
            }
        }
        self.core.patch_namespaced_pod_status(
            meta["name"], meta["namespace"], patch, _content_type=MERGE_PATCH, _preload_content=False
        )
        logger.warning("pod %s/%s marked Failed (NodeLost)", meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            self._force_delete_once(pod)
        return True


def _lines(response: Any) -> Iterator[str]:
    """Lines of a streaming HTTP response (one watch event per line)."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode()
    if buffer.strip():
        yield buffer.decode()


def main(argv: list[str] | None = None) -> None:
    """Run the process kubelet until SIGTERM/SIGINT (``python -m testbed.kubelet``)."""
    parser = argparse.ArgumentParser(prog="python -m testbed.kubelet", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node", default=NODE_NAME)
    parser.add_argument("--table", type=Path, required=True, help="image table (JSON)")
    parser.add_argument("--root", type=Path, required=True, help="directory for pods' files and logs")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    kubelet = Kubelet(kubeconfig=options.kubeconfig, node=options.node, table=options.table, root=options.root)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def run() -> None:
        try:
            kubelet.run()
        except BaseException:
            logger.exception("kubelet failed")
            stop.set()

    threading.Thread(target=run, name="kubelet", daemon=True).start()
    stop.wait()
    logger.info("stopping")
    kubelet.shutdown()


# -- the handle the tests use ----------------------------------------------------------------


class ProcessKubelet:
    """Starts, stops and configures a process kubelet (``python -m testbed.kubelet``) for tests.

    Attributes: ``node`` (the Node name), ``root`` (pods' files and logs),
    ``table_path`` (the image table), ``log_file`` (the kubelet's own log).
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        root: Path,
        node: str = NODE_NAME,
        images: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.root = root
        self.node = node
        self.table_path = root / "images.json"
        self.server: procs.Server | None = None
        self._images: dict[str, dict[str, Any]] = {name: dict(entry) for name, entry in (images or {}).items()}

    @property
    def log_file(self) -> Path:
        return self.root / "kubelet.log"

    def start(self, timeout: float = 60) -> ProcessKubelet:
        """Start the kubelet; return once its Node is registered and it watches Pods."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_table()
        (self.root / "ready").unlink(missing_ok=True)
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(tools.REPO), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
        self.server = procs.start(
            "kubelet",
            [
                sys.executable,
                "-m",
                "testbed.kubelet",
                "--kubeconfig",
                str(self.kubeconfig),
                "--node",
                self.node,
                "--table",
                str(self.table_path),
                "--root",
                str(self.root),
            ],
            log_dir=self.root,
            env=env,
            cwd=tools.REPO,
        )
        procs.wait_until(lambda: (self.root / "ready").exists(), timeout, "the process kubelet", server=self.server)
        return self

    def stop(self) -> None:
        """Stop the kubelet (it kills its Pods' processes) and sweep any process left behind."""
        if self.server is not None:
            self.server.stop(timeout=GRACE_CAP + 10)
        kill_leftovers(self.root)

    def kill(self) -> None:
        """SIGKILL the kubelet alone, like a crashed node agent: the Pods' processes keep running."""
        if self.server is not None and self.server.alive():
            self.server.popen.kill()
            self.server.popen.wait()

    def register_image(
        self,
        image: str,
        *,
        env: Mapping[str, str] | None = None,
        workingDir: str | None = None,
        entrypoint: list[str] | None = None,
        args: list[str] | None = None,
        runtime: str | None = None,
        built_image: str | None = None,
    ) -> None:
        """Add or replace an image table entry; the running kubelet picks it up at its next look-up.

        ``runtime="runc"`` selects container mode: Pods run from ``built_image`` (default:
        ``image``), one that ``make image`` built, under runc; ``workingDir`` then overrides the
        image's WORKDIR and ``env`` adds to the image's ENV (no ``$VAR`` expansion).
        """
        entry: dict[str, Any] = {"env": dict(env or {})}
        if runtime is not None:
            if runtime != "runc":
                raise ValueError(f"unknown runtime {runtime!r} (only 'runc'; omit it for a local process)")
            entry["runtime"] = runtime
            entry["image"] = built_image or image
        if workingDir is not None:
            entry["workingDir"] = workingDir
        if entrypoint is not None:
            entry["entrypoint"] = list(entrypoint)
        if args is not None:
            entry["args"] = list(args)
        self._images[image] = entry
        self._write_table()

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        return json.loads(json.dumps(self._images))

    def pod_log_path(self, namespace: str, pod: str, container: str | None = None) -> Path:
        """Where the container's stdout/stderr go (the only way to read them: no ``kubectl logs``)."""
        return pod_log_path(self.root, namespace, pod, container)

    def pod_log_files(self, namespace: str) -> list[Path]:
        """The log files of every container of ``namespace``'s pods."""
        return sorted((self.root / "logs").glob(f"{namespace}_*.log"))

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """The container's output (what ``kubectl logs`` gives on a real node, :meth:`testbed.node.Node.pod_log`)."""
        return self.pod_log_path(namespace, pod, container).read_text()

    def pod_dir(self, uid: str) -> Path:
        """``<root>/<pod-uid>``: token files, kubeconfig, termination logs, pid files."""
        return self.root / uid

    def _write_table(self) -> None:
        tmp = self.table_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._images, indent=2, sort_keys=True))
        os.replace(tmp, self.table_path)


if __name__ == "__main__":
    main()
