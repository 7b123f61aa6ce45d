"""The test bed's own network namespace: the calling thread moves into it, and back.

:func:`enter` makes a new network namespace with ``unshare(CLONE_NEWNET)`` for the
calling thread (pytest's main thread), brings its loopback up and adds a veth
pair ``albed0``/``albed1``, both ends inside, ``albed0`` holding the node IP (a
veth, not a dummy interface: this machine's kernel has no dummy driver). Every process the bed starts afterwards
(etcd, apiserver, controllers, kube-scheduler, containerd, kubelet, the pods'
bridge) inherits the namespace; the machine's own interfaces, routes, iptables and
``net.*`` sysctls are never touched, and no packet can leave (nothing links the
namespace to the outside). :meth:`BedNetwork.leave` moves the thread back; once the
last bed process has exited the kernel frees the namespace with all its interfaces.

Every bed's apiserver is ``https://127.0.0.1:443`` inside its own namespace, and kubectl and
helm key their on-disk discovery and HTTP caches by that address: concurrent workers would
read and write each other's cache files. So a namespace also gets its own ``KUBECACHEDIR``
(both tools honour it) while the thread is in it.

Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the ``ip`` command (iproute2).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testbed import tools

CLONE_NEWNET = 0x40000000
NODE_IP = "10.201.0.1"
"""The node's address (InternalIP), on ``albed0``; pods reach bed services here."""
NODE_PREFIX = 24
NODE_LINK = "albed0"
"""Interface with the node IP every bed namespace has; :func:`testbed.node.leftovers` looks for it."""
PEER = "albed1"
SERVICE_IP = "10.0.0.1"
"""The ``kubernetes`` Service's ClusterIP (first of :data:`testbed.cluster.SERVICE_CIDR`), also on
``albed0``: no kube-proxy runs, so in-cluster clients (the operator from its chart, the hook Job)
reach the apiserver, which listens on port 443 of every address of the namespace, there directly."""

CACHE_ENV = "KUBECACHEDIR"
"""kubectl's and helm's cache directory (default ``~/.kube/cache``), one per bed namespace."""
CACHE_DIR_PREFIX = "alembic-operator-kubecache-"

_libc = ctypes.CDLL(None, use_errno=True)
_active: BedNetwork | None = None
"""The namespace :func:`enter` made and no :meth:`BedNetwork.leave` ended yet."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def namespace_inode(pid: int | str = "self", kind: str = "net") -> int:
    """Inode of a process's namespace (what ``/proc/<pid>/ns/<kind>`` points at)."""
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


@dataclass
class BedNetwork:
    """A network namespace the calling thread is in until :meth:`leave`."""

    inode: int
    node_ip: str
    _original: int
    _thread: int
    _outer: BedNetwork | None = None
    _cache_dir: str = ""
    _outer_cache_dir: str | None = None

    def leave(self) -> None:
        """Move the thread back to the namespace it came from (safe to call twice)."""
        if self._original < 0:
            return
        if threading.get_ident() != self._thread:
            raise RuntimeError("BedNetwork.leave must run on the thread that entered")
        _check(_libc.setns(self._original, CLONE_NEWNET), "setns back to the original network namespace")
        os.close(self._original)
        self._original = -1
        _restore_env(CACHE_ENV, self._outer_cache_dir)
        shutil.rmtree(self._cache_dir, ignore_errors=True)
        global _active
        if _active is self:
            _active = self._outer  # a bed entered from inside another (test_node's, in the session's)

    def __enter__(self) -> BedNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()


def enter(node_ip: str = NODE_IP) -> BedNetwork:
    """Create a network namespace, move the calling thread into it and set it up.

    Inside: ``lo`` up, and ``albed0`` (veth, its peer ``albed1`` also inside) with ``node_ip``/24. On failure the
    thread is moved back before the error is raised.
    """
    ip = tools.system_binary("ip", "install iproute2 (apt-get install iproute2)")
    if os.geteuid() != 0:
        raise tools.MissingTool("the test bed's network namespace needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    bed = BedNetwork(inode=0, node_ip=node_ip, _original=original, _thread=threading.get_ident())
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        bed.inode = os.stat("/proc/thread-self/ns/net").st_ino
        for args in (
            ["link", "set", "lo", "up"],
            ["link", "add", NODE_LINK, "type", "veth", "peer", "name", PEER],
            ["addr", "add", f"{node_ip}/{NODE_PREFIX}", "dev", NODE_LINK],
            ["addr", "add", f"{SERVICE_IP}/32", "dev", NODE_LINK],
            ["link", "set", PEER, "up"],
            ["link", "set", NODE_LINK, "up"],
        ):
            subprocess.run([str(ip), *args], check=True, capture_output=True, text=True)
    except BaseException:
        bed.leave()
        raise
    global _active
    bed._outer, _active = _active, bed
    bed._outer_cache_dir = os.environ.get(CACHE_ENV)
    bed._cache_dir = tempfile.mkdtemp(prefix=CACHE_DIR_PREFIX)
    os.environ[CACHE_ENV] = bed._cache_dir
    return bed


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def active() -> BedNetwork | None:
    """The bed namespace the calling thread is in, if any."""
    if _active is not None and _active._original >= 0 and namespace_inode("thread-self") == _active.inode:
        return _active
    return None


def outside(argv: list[str]) -> list[str]:
    """``argv`` to run in the network namespace the outermost bed was entered from (the machine's).

    For what needs the machine's network while the bed's namespace is entered (pip reaching the
    package index): the bed's namespace has no route out, by design. Unchanged when no bed is entered.
    """
    bed = active()
    if bed is None:
        return argv
    while bed._outer is not None and bed._outer._original >= 0:
        bed = bed._outer
    nsenter = tools.system_binary("nsenter", "install util-linux (apt-get install util-linux)")
    return [str(nsenter), f"--net=/proc/{os.getpid()}/fd/{bed._original}", "--", *argv]


def service_host() -> str:
    """Where a server the bed starts now should listen so pods reach it: the node IP inside the
    bed's namespace (the node's pods route to it over their bridge), else
    ``$ALEMBIC_OPERATOR_TEST_SERVICE_HOST`` (the existing-cluster opt-in, :mod:`testbed.existing`),
    else loopback."""
    configured = os.environ.get("ALEMBIC_OPERATOR_TEST_SERVICE_HOST")
    if configured and active() is None:
        return configured
    bed = active()
    return bed.node_ip if bed is not None else "127.0.0.1"


def processes_in(inode: int, kind: str = "net") -> list[int]:
    """Pids of every process (any of its threads) whose ``kind`` namespace has ``inode``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            tasks = list((entry / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                if os.stat(task / "ns" / kind).st_ino == inode:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


@contextlib.contextmanager
def pinned(inode: int, kind: str = "net") -> Iterator[None]:
    """Keep the namespace with ``inode`` (and so its inode number) alive while inside.

    The kernel hands a freed namespace's number to the next namespace made, of any kind (the
    lowest free one), so once a bed's last process has gone, another xdist worker's new pod
    sandbox may carry it: :func:`processes_in` by number alone would then name a stranger.
    An open file of the namespace keeps it; a check for "nothing left in it" pins it first.
    Raises :class:`LookupError` when no process is in it to pin it through.
    """
    for pid in processes_in(inode, kind):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                fd = os.open(task / "ns" / kind, os.O_RDONLY)
            except OSError:
                continue
            if os.fstat(fd).st_ino != inode:  # this thread moved, or ended and its id was reused
                os.close(fd)
                continue
            try:
                yield
            finally:
                os.close(fd)
            return
    raise LookupError(f"no process is in the {kind} namespace {inode} to pin it")
