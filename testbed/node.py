"""A real Kubernetes node for the test bed: containerd + runc + CNI, kubelet, kube-scheduler.

Runs inside the bed's network namespace (:mod:`testbed.netns`; the calling
thread must be in it) next to a :class:`testbed.cluster.Cluster` started with
``node_ip``. What :meth:`Node.start` sets up, all state under ``workdir``:

1. a cgroup ``/alembic-bed-<hex>`` in every cgroup hierarchy: the kubelet's
   ``cgroupRoot`` (pods go to ``.../kubepods``) and ``.../runtime``, which
   containerd, its shims and the kubelet join, so one tree holds every process
   of the node and :meth:`Node.stop` can end them all by pid;
2. a private mount namespace (``unshare -m --propagation private``, held by a
   ``sleep``) for containerd and the kubelet: a tmpfs on ``/run`` (shim sockets,
   pod netns files), overlays on ``/var/lib`` and ``/var/log`` (the CNI cache),
   and files bind-mounted over the ``/proc/sys`` entries the kubelet would set
   machine-wide (``vm.overcommit_memory``, ``kernel.panic``, ...) holding the
   values it expects, so it changes nothing outside. Every mount vanishes with
   the namespace;
3. containerd 2.4 (built from its module by ``tools/containerd/build.sh``; CRI plugin: ``overlayfs`` snapshotter,
   ``SystemdCgroup = false``, ``disable_apparmor``, ``restrict_oom_score_adj``
   when the capability bounding set lacks CAP_SYS_RESOURCE — runc cannot set
   oom_score_adj -998 then), CNI ``bridge`` + ``host-local`` on ``10.244.0.0/24``; runc and
   the CNI plugins are Debian's. containerd 2 sends CRI container events, which the kubelet's
   ``EventedPLEG`` turns into an immediate relist: a step container's exit reaches the Pod status
   at once instead of at the next 1 s relist (Debian's containerd 1.6 sends none);
4. images imported with ``ctr -n k8s.io images import`` from OCI archives: the
   sandbox (:data:`testbed.ociimage.PAUSE_IMAGE`), a static busybox
   (:data:`testbed.ociimage.BUSYBOX_IMAGE`) and any archives given;
5. kube-scheduler, and the kubelet (client certificate ``CN=system:node:<name>,
   O=system:nodes`` from the bed's CA, so Node authorization applies; serving
   on the node IP, x509 client auth against the same CA); returns when the Node
   is Ready without the ``not-ready`` taint.

:meth:`Node.stop` ends every process of the cgroup tree, the mount namespace and
the cgroups; :meth:`Node.leftovers` and :func:`leftovers` say what is left (empty
when clean). ``python -m testbed.node check`` runs the machine-wide check.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from testbed import certs, netns, ociimage, ports, procs, tools
from testbed.cluster import Cluster

CGROUP_PREFIX = "alembic-bed-"
BED_DIR_MARKER = "alembic-operator-bed-"
"""Prefix of every bed's working directory (``/tmp/alembic-operator-bed-*``)."""
POD_SUBNET = "10.244.0.0/24"
DEBIAN_HINT = (
    "install Debian's runc and containernetworking-plugins "
    "(bash .ci/system-deps.sh, or apt-get install runc containernetworking-plugins)"
)
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
"""What the kubelet (pkg/kubelet/cm setupKernelTunables) sets when a value differs."""
CAP_SYS_RESOURCE = 24
START_TIMEOUT = 90.0


def cgroup_mounts() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy of this mount namespace."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(left.split()[4]))
    return found


def has_bounding_capability(cap: int) -> bool:
    """True when ``cap`` is in this process's capability bounding set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def cgroup_dirs(name: str) -> list[Path]:
    """Existing directories of cgroup ``name`` (and below it) in every hierarchy, deepest first."""
    dirs: list[Path] = []
    for mount in cgroup_mounts():
        top = mount / name
        if top.is_dir():
            dirs.extend(Path(path) for path, _, _ in os.walk(top))
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for path in cgroup_dirs(name):
        try:
            pids.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
        except OSError:
            continue
    return pids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Node:
    """containerd + kubelet + kube-scheduler registered as ``name``; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        workdir: Path,
        network: netns.BedNetwork,
        *,
        name: str = "bed-node",
        archives: Sequence[Path] = (),
        max_pods: int = 110,
    ) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.network = network
        self.name = name
        self.archives = list(archives)
        self.max_pods = max_pods
        """The kubelet's maxPods: the default 110, raised by benchmarks that run more step pods at once."""
        self.cgroup = f"{CGROUP_PREFIX}{secrets.token_hex(4)}"
        self.holder: procs.Server | None = None
        self.mount_ns = 0
        self.servers: dict[str, procs.Server] = {}
        self.timings: dict[str, float] = {}
        self.socket = workdir / "containerd" / "containerd.sock"
        self.restrict_oom_score_adj = not has_bounding_capability(CAP_SYS_RESOURCE)
        self._imported_layouts: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Node:
        if netns.namespace_inode("thread-self") != self.network.inode:
            raise RuntimeError("Node.start must run in the bed's network namespace (testbed.netns.enter)")
        binaries = {name: tools.binary(name) for name in ("kubelet", "kube-scheduler", "pause")}
        for name in ("containerd", "containerd-shim-runc-v2", "ctr"):
            binaries[name] = tools.containerd_binary(name)
        for name in ("runc", "unshare", "nsenter", "mount"):
            binaries[name] = tools.system_binary(name, DEBIAN_HINT)
        for plugin in ("bridge", "host-local", "loopback"):
            if not os.access(f"/usr/lib/cni/{plugin}", os.X_OK):
                raise tools.MissingTool(f"/usr/lib/cni/{plugin} not found: {DEBIAN_HINT}")
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._make_cgroups()
            self._start_mount_namespace(binaries)
            self._start_containerd(binaries)
            self._import_images(binaries["ctr"])
            self.timings["containerd_and_images"] = time.monotonic() - t0
            self._start_scheduler(binaries["kube-scheduler"])
            self._start_kubelet(binaries["kubelet"])
            self.timings["start_to_ready"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the kubelet, scheduler and containerd, then kill whatever is left in the
        node's cgroups (pods, shims, the mount namespace holder) and remove the cgroups."""
        for name in ("kubelet", "kube-scheduler", "containerd"):
            server = self.servers.pop(name, None)
            if server is not None:
                server.stop(timeout=10)
        deadline = time.monotonic() + 30
        while (pids := cgroup_pids(self.cgroup)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.holder is not None and not self.holder.alive():
                self.holder = None
            time.sleep(0.1)
        if self.holder is not None:
            self.holder.stop(timeout=5, sig=signal.SIGKILL)
            self.holder = None
        while self.servers:
            self.servers.popitem()[1].stop(timeout=5, sig=signal.SIGKILL)
        while True:
            remaining = []
            for path in cgroup_dirs(self.cgroup):
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    remaining.append(path)
            if not remaining or time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- steps -------------------------------------------------------------------------------

    def _make_cgroups(self) -> None:
        """``/<cgroup>`` in every hierarchy (the kubelet checks its cgroupRoot exists) and
        ``/<cgroup>/runtime`` for containerd, shims and kubelet."""
        for mount in cgroup_mounts():
            for path in (mount / self.cgroup, mount / self.cgroup / "runtime"):
                path.mkdir(exist_ok=True)
                for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset starts empty: copy the parent's
                    if (path / knob).exists() and not (path / knob).read_text().strip():
                        (path / knob).write_text((path.parent / knob).read_text())

    def _joined(self, argv: Sequence[Any], *, mount_ns: bool) -> list[str]:
        """``argv`` wrapped so it first joins ``/<cgroup>/runtime`` everywhere (and the mount namespace)."""
        procs_files = " ".join(str(m / self.cgroup / "runtime" / "cgroup.procs") for m in cgroup_mounts())
        script = f'for f in {procs_files}; do echo $$ > "$f"; done; exec "$@"'
        prefix: list[str] = []
        if mount_ns:
            assert self.holder is not None
            prefix = ["nsenter", f"--target={self.holder.popen.pid}", "--mount", "--"]
        return ["sh", "-c", script, "sh", *prefix, *map(str, argv)]

    def _start_mount_namespace(self, binaries: dict[str, Path]) -> None:
        state = self.workdir / "mountns"
        (state / "sysctl").mkdir(parents=True, exist_ok=True)
        lines = ["set -eu", "mount -t tmpfs -o mode=0755,size=256m albed-run /run"]
        for sub in ("lib", "log"):
            upper, work = state / "overlay" / sub / "upper", state / "overlay" / sub / "work"
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            lines.append(
                f"mount -t overlay albed-var{sub} -o lowerdir=/var/{sub},upperdir={upper},workdir={work} /var/{sub}"
            )
        self.sysctl_overrides = {}
        for key, value in KUBELET_SYSCTLS.items():
            current = Path("/proc/sys", key).read_text().strip()
            if current != value:
                file = state / "sysctl" / key.replace("/", ".")
                file.write_text(value + "\n")
                lines.append(f"mount --bind {file} /proc/sys/{key}")
                self.sysctl_overrides[key] = (current, value)
        ready = state / "ready"
        lines += [f"touch {ready}", "exec sleep infinity"]
        (state / "setup.sh").write_text("\n".join(lines) + "\n")
        argv = [binaries["unshare"], "--mount", "--propagation", "private", "--", "sh", str(state / "setup.sh")]
        self.holder = procs.start("mountns", self._joined(argv, mount_ns=False), log_dir=self.workdir / "logs")
        procs.wait_until(ready.exists, 10, "the node's mount namespace", server=self.holder)
        self.mount_ns = netns.namespace_inode(self.holder.popen.pid, "mnt")

    def _start_containerd(self, binaries: dict[str, Path]) -> None:
        root = self.socket.parent
        (root / "cni").mkdir(parents=True, exist_ok=True)
        (root / "cni" / "10-bed.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "bed",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "albed-br0",
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(root / "ipam"),
                            },
                        }
                    ],
                },
                indent=1,
            )
        )
        config = f'''version = 3
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.erofs"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{ociimage.PAUSE_IMAGE}"
[plugins."io.containerd.cri.v1.runtime"]
  disable_apparmor = true
  restrict_oom_score_adj = {str(self.restrict_oom_score_adj).lower()}
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{binaries["runc"]}"
        Root = "{root}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{root}/cni"
    max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
'''
        (root / "config.toml").write_text(config)
        server = procs.start(
            "containerd",
            self._joined(
                [binaries["containerd"], "--config", root / "config.toml", "--log-level", "info"], mount_ns=True
            ),
            log_dir=self.workdir / "logs",
            # containerd finds its shim on PATH before its own directory: ours, not a Debian 1.6 one
            env={"PATH": f"{binaries['containerd'].parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        self.servers["containerd"] = server
        procs.wait_until(
            lambda: self.ctr(binaries["ctr"], "version").returncode == 0,
            START_TIMEOUT,
            "containerd's socket",
            interval=0.1,
            server=server,
        )

    def ctr(self, ctr: Path | None, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` against this node's containerd in the ``k8s.io`` namespace."""
        ctr = ctr or tools.containerd_binary("ctr")
        return subprocess.run(
            [str(ctr), f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def _import_images(self, ctr: Path) -> None:
        images = self.workdir / "images"
        for archive in (ociimage.pause_image(images), ociimage.busybox_image(images), *self.archives):
            self.import_image(archive, ctr)

    def import_image(self, archive: Path, ctr: Path | None = None) -> None:
        """``ctr -n k8s.io images import`` of an OCI archive (unpacked for overlayfs)."""
        proc = self.ctr(ctr, "images", "import", "--snapshotter=overlayfs", str(archive))
        if proc.returncode != 0:
            raise RuntimeError(f"ctr images import {archive} failed:\n{proc.stderr}")

    def import_layout(self, layout: Path, name: str) -> None:
        """Import an OCI image layout directory (what image/build.sh leaves under
        ``oci/``, tagged ``dev``) as ``name`` (``repo:tag``), streamed to ``ctr images import -``."""
        repo = name.rsplit(":", 1)[0]
        argv = [
            str(tools.containerd_binary("ctr")),
            f"--address={self.socket}",
            "--namespace=k8s.io",
            "images",
            "import",
            "--snapshotter=overlayfs",
            f"--base-name={repo}",
            "-",
        ]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            for entry in sorted(layout.rglob("*")):
                tar.add(entry, arcname=str(entry.relative_to(layout)), recursive=False)
        _, err = proc.communicate(timeout=300)  # closes stdin: end of the archive
        if proc.returncode != 0:
            raise RuntimeError(f"ctr images import of {layout} failed:\n{err.decode(errors='replace')}")
        listed = self.ctr(None, "images", "ls", "-q").stdout.split()
        if name not in listed:
            raise RuntimeError(f"{layout} imported, but {name} is not among the images: {listed}")

    def register_image(
        self,
        image: str,
        *,
        built_image: str | None = None,
        workingDir: str | None = None,
        env: dict[str, str] | None = None,
        entrypoint: list[str] | None = None,
        runtime: str | None = None,
    ) -> None:
        """Make ``image`` a real image of this node: the one ``make image`` built as ``built_image``
        (``example-app:dev`` -> the ``example-app`` layout), its WORKDIR and ENV changed as given
        (what a Dockerfile ``FROM built_image`` with ``WORKDIR``/``ENV`` lines would make), imported
        into containerd under the name the kubelet asks for. ``runtime`` is accepted for the
        emulated kubelet's signature and ignored: every pod here runs under runc."""
        change = {"workingDir": workingDir, "env": env or {}, "entrypoint": entrypoint}
        self.register_images({image: change}, built_image=built_image or image)

    def register_images(self, variants: dict[str, dict[str, Any]], *, built_image: str) -> None:
        """Several :meth:`register_image` of one built image in one ``ctr images import``."""
        layout = ociimage.built_layout(built_image.split("/")[-1].split(":")[0])
        named = {ociimage.normalized(image): change for image, change in variants.items()}
        first = str(layout.resolve()) not in self._imported_layouts
        argv = [
            str(tools.containerd_binary("ctr")),
            f"--address={self.socket}",
            "--namespace=k8s.io",
            "images",
            "import",
            "--snapshotter=overlayfs",
            "-",
        ]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        ociimage.write_stream(proc.stdin, ociimage.variant_stream(layout, named, with_layers=first))
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"ctr images import of {sorted(named)} from {layout} failed:\n{err.decode()}")
        self._imported_layouts.add(str(layout.resolve()))
        listed = set(self.ctr(None, "images", "ls", "-q").stdout.split())
        missing = set(named) - listed
        if missing:
            raise RuntimeError(f"imported from {layout}, but {sorted(missing)} are not among the images")

    def pod_log_files(self, namespace: str) -> list[Path]:
        """The kubelet's log files of every container of ``namespace``'s pods (``podLogsDir``)."""
        return sorted((self.workdir / "pod-logs").glob(f"{namespace}_*/*/*.log"))

    def pod_log(self, namespace: str, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        """The container's output as ``kubectl logs`` gives it (apiserver -> kubelet -> containerd)."""
        args = ["logs", "-n", namespace, pod, *(["-c", container] if container else [])]
        return self.cluster.kubectl(*args, *(["--previous"] if previous else [])).stdout

    def _start_scheduler(self, scheduler: Path) -> None:
        kubeconfig = self.cluster.kubeconfig
        server = procs.start(
            "kube-scheduler",
            [
                scheduler,
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.free_port()}",
                f"--cert-dir={self.workdir / 'scheduler-certs'}",
                "--profiling=false",
                "--v=1",
            ],
            log_dir=self.workdir / "logs",
        )
        self.servers["kube-scheduler"] = server

    def _start_kubelet(self, kubelet: Path) -> None:
        assert self.cluster.certs is not None
        root = self.workdir / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        cert, key = certs.client_cert(
            self.cluster.certs,
            f"kubelet-{self.name}",
            common_name=f"system:node:{self.name}",
            organizations=("system:nodes",),
        )
        kubeconfig = root / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "bed",
                            "cluster": {
                                "server": self.cluster.server,
                                "certificate-authority": str(self.cluster.ca_file),
                            },
                        }
                    ],
                    "users": [{"name": "node", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
                    "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "node"}}],
                    "current-context": "bed",
                }
            )
        )
        endpoint = f"unix://{self.socket}"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.network.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.cluster.ca_file)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": endpoint,
            "imageServiceEndpoint": endpoint,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}",
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": [],
            "failCgroupV1": False,
            "failSwapOn": False,
            "protectKernelDefaults": False,
            "makeIPTablesUtilChains": False,
            "podLogsDir": str(self.workdir / "pod-logs"),
            "resolvConf": "/etc/resolv.conf",
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "shutdownGracePeriod": "0s",
            "nodeStatusReportFrequency": "10s",
            "syncFrequency": "10s",
            "maxPods": self.max_pods,
            # CRI container events (containerd 2) ask for a relist at once: a step's exit is seen in
            # milliseconds, not at the next 1 s relist (alpha in 1.37; the generic relist stays the fallback)
            "featureGates": {"EventedPLEG": True},
        }
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        server = procs.start(
            "kubelet",
            self._joined(
                [
                    kubelet,
                    f"--config={root / 'config.yaml'}",
                    f"--kubeconfig={kubeconfig}",
                    f"--root-dir={root}",
                    f"--hostname-override={self.name}",
                    f"--node-ip={self.network.node_ip}",
                    "--v=1",
                ],
                mount_ns=True,
            ),
            log_dir=self.workdir / "logs",
        )
        self.servers["kubelet"] = server
        procs.wait_until(self._ready, START_TIMEOUT, f"node {self.name} Ready", interval=0.2, server=server)

    def _ready(self) -> bool:
        with self.cluster.api_client() as api:
            node = kubernetes.client.CoreV1Api(api).read_node(self.name)
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        tainted = any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or [])
        return ready and not tainted

    # -- inspection --------------------------------------------------------------------------

    def memory(self) -> dict[str, int]:
        """Resident memory in KiB: kubelet, containerd, all shims, all pod processes."""
        result = {"kubelet": 0, "containerd": 0, "shims": 0, "pods": 0}
        runtime = set()
        for mount in cgroup_mounts():
            path = mount / self.cgroup / "runtime" / "cgroup.procs"
            if path.exists():
                runtime.update(int(p) for p in path.read_text().split())
                break
        for pid in cgroup_pids(self.cgroup):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if pid not in runtime:
                result["pods"] += _rss_kib(pid)
            elif comm in ("kubelet", "containerd"):
                result[comm] += _rss_kib(pid)
            elif comm.startswith("containerd-shim"):
                result["shims"] += _rss_kib(pid)
        return result

    def leftovers(self) -> list[str]:
        """What of this node is still there: processes in its cgroups or mount namespace, cgroups."""
        found = [f"process {pid} in cgroup {self.cgroup}" for pid in sorted(cgroup_pids(self.cgroup))]
        if self.mount_ns:
            found += [
                f"process {pid} in the node's mount namespace" for pid in netns.processes_in(self.mount_ns, "mnt")
            ]
        found += [f"cgroup {path}" for path in cgroup_dirs(self.cgroup)]
        return found


class NodeBed:
    """The whole bed with a real node: its network namespace, the control plane, the node.

    :meth:`start` enters a new network namespace on the calling thread, starts a
    :class:`~testbed.cluster.Cluster` with the node IP and a :class:`Node`;
    :meth:`stop` stops both, leaves the namespace, and returns :meth:`leftovers`.
    """

    def __init__(self, workdir: Path, *, archives: Sequence[Path] = ()) -> None:
        self.workdir = workdir
        self.archives = archives
        self.network: netns.BedNetwork | None = None
        self.cluster: Cluster | None = None
        self.node: Node | None = None
        self.network_inode = 0
        self.mount_ns = 0

    def start(self) -> NodeBed:
        self.network = netns.enter()
        self.network_inode = self.network.inode
        try:
            self.cluster = Cluster(node_ip=self.network.node_ip).start(self.workdir / "cluster")
            self.node = Node(self.cluster, self.workdir / "node", self.network, archives=self.archives)
            self.node.start()
            self.mount_ns = self.node.mount_ns
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[str]:
        """Stop everything (safe to call twice); return what is left (empty when clean)."""
        if self.node is not None:
            self.node.stop()
        if self.cluster is not None:
            self.cluster.stop()
        if self.network is not None:
            self.network.leave()
        return self.leftovers()

    def leftovers(self) -> list[str]:
        found = self.node.leftovers() if self.node is not None else []
        if self.network_inode:
            found += [f"process {pid} in the bed's network namespace" for pid in netns.processes_in(self.network_inode)]
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if str(self.workdir) in line:
                found.append(f"mount {line}")
        return found


def leftovers(
    *, marker: str = BED_DIR_MARKER, cgroup_glob: str = f"{CGROUP_PREFIX}*", network_inode: int | None = None
) -> list[str]:
    """Anything of a bed left on this machine (empty when clean).

    Looks for: cgroups matching ``cgroup_glob`` in any hierarchy; mounts of this
    mount namespace naming ``marker`` (a bed directory) or ``albed-*``; the processes
    :func:`bed_processes` finds. The defaults match every bed.
    """
    found = [f"cgroup {path}" for path in bed_cgroups(cgroup_glob)]
    found += [f"mount {line}" for line in bed_mounts(marker)]
    found += [f"process {pid}{what}" for pid, what in bed_processes(marker=marker, network_inode=network_inode).items()]
    return found


def bed_cgroups(cgroup_glob: str = f"{CGROUP_PREFIX}*") -> list[Path]:
    """Top cgroup directories of beds, in every hierarchy."""
    return [path for mount in cgroup_mounts() for path in sorted(mount.glob(cgroup_glob))]


def bed_mounts(marker: str = BED_DIR_MARKER) -> list[str]:
    """Lines of this mount namespace's mountinfo that name a bed directory or an ``albed-*`` mount."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if marker in line or " albed-" in line]


def bed_processes(*, marker: str = BED_DIR_MARKER, network_inode: int | None = None) -> dict[int, str]:
    """Processes of beds, pid → what makes them one: a command line naming ``marker``, or living in a
    network namespace that holds an ``albed0`` interface — or, with ``network_inode``, only in that
    namespace (one bed's own check while other beds, e.g. other pytest-xdist workers', still run)."""
    found: dict[int, str] = {}
    me = os.getpid()
    checked: dict[int, bool] = {}
    ip = tools.system_binary("ip", "install iproute2 (apt-get install iproute2)")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue
        if marker in cmdline:
            found[int(entry.name)] = f": {cmdline.strip()[:200]}"
            continue
        if inode not in checked:
            checked[inode] = (
                inode == network_inode
                if network_inode is not None
                else subprocess.run(
                    ["nsenter", f"--net={entry / 'ns' / 'net'}", str(ip), "link", "show", netns.NODE_LINK],
                    capture_output=True,
                ).returncode
                == 0
            )
        if checked[inode]:
            found[int(entry.name)] = f" in a bed network namespace: {cmdline.strip()[:200]}"
    return found


def main(argv: Sequence[str]) -> int:
    if list(argv) not in (["check"], ["clean"]):
        print("usage: python -m testbed.node check|clean", file=sys.stderr)
        return 2
    if list(argv) == ["clean"]:
        from testbed import sweep  # here: sweep imports this module

        for line in sweep.clean():
            print(f"cleaned: {line}")
    found = leftovers()
    for line in found:
        print(f"left by a test bed: {line}", file=sys.stderr)
    print("test bed leftovers: none" if not found else f"test bed leftovers: {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
