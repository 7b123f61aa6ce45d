"""Run containers from the images ``make image`` built, under ``runc`` (no Docker engine).

``image/build.sh`` exports every image it builds to
``$ALEMBIC_OPERATOR_CACHE/images/<name>-<key>/`` (an OCI layout, the unpacked root
filesystem, the image config) and points ``<name>-current`` at the newest one. This
module turns such an image plus a Pod-like container spec into an OCI runtime bundle
and runs it with ``runc run``::

    from testbed import containers
    c = containers.run_container(image="alembic-operator:dev", args=["--help"],
                                 log_path=tmp / "log")
    assert c.wait(timeout=60) == 0

Semantics follow Kubernetes: ``command`` replaces the image's ENTRYPOINT (and drops its
CMD), ``args`` replace CMD; the image's Env comes first and the container's ``env``
overrides it by name; ``working_dir`` and ``user`` default to the image's WorkingDir and
User. Containers share the host's network namespace (loopback PostgreSQL/S3/apiserver are
reachable at 127.0.0.1) and get their own mount, PID, IPC and UTS namespaces. The root
filesystem is an overlay over the cached one (the cache is never written), read-only
when ``read_only_root`` (then /tmp is a tmpfs, as an emptyDir would be).

Needs root, ``runc`` (``make image-deps``) and the images (``make image``); a missing
piece raises :class:`ContainerError` that says how to get it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Completed",
    "Container",
    "ContainerError",
    "Image",
    "cache_dir",
    "find_image",
    "lookup_user",
    "prepare_bundle",
    "remove",
    "run",
    "run_container",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
RUNC_ROOT = "/run/runc"
CGROUP_PARENT = "/alembic-operator-testbed"

# Docker's default capability set (what a container gets without securityContext).
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class ContainerError(RuntimeError):
    """A container could not be prepared or started; the message says what to do."""


def cache_dir() -> Path:
    """Where image/build.sh exports images (``$ALEMBIC_OPERATOR_CACHE/images``)."""
    root = os.environ.get("ALEMBIC_OPERATOR_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "alembic-operator")
    return Path(root) / "images"


def _repo_name(image: str) -> str:
    """``localhost/alembic-operator:dev`` / ``registry.example/x/example-app@sha256:..`` -> the last path part."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


@dataclass(frozen=True)
class Image:
    """An image exported by image/build.sh."""

    name: str
    dir: Path
    meta: dict
    config: dict  # OCI image config: Entrypoint, Cmd, Env, WorkingDir, User, Labels

    @property
    def rootfs(self) -> Path:
        return self.dir / "bundle" / "rootfs"


def find_image(image: str) -> Image:
    """The cached export of ``image`` (any registry/tag: the name picks ``<name>-current``)."""
    name = _repo_name(image)
    current = cache_dir() / f"{name}-current"
    if not (current / ".complete").exists():
        raise ContainerError(f"image {image!r} is not built: no {current}; run `make image` (image/build.sh) as root")
    d = current.resolve()
    meta = json.loads((d / "meta.json").read_text())
    config = json.loads((d / "image-config.json").read_text()) or {}
    return Image(name=name, dir=d, meta=meta, config=config)


def prepare_bundle(image_name: str) -> Path:
    """The unpacked root filesystem of ``image_name`` from the cache (never written to)."""
    img = find_image(image_name)
    if not (img.rootfs / "usr").is_dir():
        raise ContainerError(f"{img.rootfs} is incomplete; rebuild with IMAGE_REBUILD=1 make image")
    return img.rootfs


def _runc() -> str:
    path = shutil.which("runc")
    if not path:
        raise ContainerError("runc is missing: run `make image-deps` (bash image/install-deps.sh) as root")
    if os.geteuid() != 0:
        raise ContainerError("running containers with runc needs root")
    return path


def _lookup_user(rootfs: Path, user: str | int | None) -> tuple[int, int]:
    """Resolve ``uid[:gid]`` or ``name[:group]`` against the image's /etc/passwd and /etc/group."""
    if user is None or user == "":
        return 0, 0
    if isinstance(user, int):
        user = str(user)
    name, _, group = str(user).partition(":")

    def table(path: str) -> list[list[str]]:
        try:
            return [
                line.split(":")
                for line in (rootfs / path).read_text().splitlines()
                if line and not line.startswith("#")
            ]
        except FileNotFoundError:
            return []

    passwd = table("etc/passwd")
    if name.isdigit():
        uid = int(name)
        gid = next((int(p[3]) for p in passwd if len(p) > 3 and p[2] == name), uid if not group else 0)
    else:
        entry = next((p for p in passwd if p[0] == name), None)
        if entry is None:
            raise ContainerError(f"user {name!r} is not in the image's /etc/passwd")
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            entry = next((g for g in table("etc/group") if g[0] == group), None)
            if entry is None:
                raise ContainerError(f"group {group!r} is not in the image's /etc/group")
            gid = int(entry[2])
    return uid, gid


def lookup_user(image: Image, user: str | int | None) -> tuple[int, int]:
    """``(uid, gid)`` a container of ``image`` runs as for ``user`` (None: the image's USER)."""
    return _lookup_user(image.rootfs, user if user is not None else image.config.get("User"))


def _merge_env(
    image_env: Iterable[str], env: Mapping[str, str] | Sequence[tuple[str, str]] | None, hostname: str
) -> list[str]:
    merged: dict[str, str] = {"PATH": DEFAULT_PATH}
    for item in image_env or ():
        k, _, v = item.partition("=")
        merged[k] = v
    merged["HOSTNAME"] = hostname
    items = env.items() if isinstance(env, Mapping) else (env or ())
    for k, v in items:
        merged[str(k)] = str(v)
    return [f"{k}={v}" for k, v in merged.items()]


def resolve_argv(config: Mapping, command: Sequence[str] | None, args: Sequence[str] | None) -> list[str]:
    """Kubernetes' rule: command replaces ENTRYPOINT (CMD dropped), args replace CMD."""
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = list(config.get("Cmd") or [])
    if command:
        argv = list(command) + list(args or [])
    elif args is not None:
        argv = entrypoint + list(args)
    else:
        argv = entrypoint + cmd
    if not argv:
        raise ContainerError("no command: the image has no ENTRYPOINT/CMD and none was given")
    return argv


_live: dict[str, Container] = {}
_live_lock = threading.Lock()


@dataclass
class Container:
    """A running (or finished) ``runc run`` container."""

    id: str
    run_dir: Path
    log_path: Path
    process: subprocess.Popen
    overlay: Path | None
    argv: list[str]
    _log_file: object = field(repr=False, default=None)
    _cleaned: bool = field(repr=False, default=False)

    @property
    def pid(self) -> int:
        """PID of the ``runc run`` process (the container's parent on the host)."""
        return self.process.pid

    def container_pid(self) -> int | None:
        """Host PID of the container's first process, while it runs."""
        try:
            return int((self.run_dir / "container.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def returncode(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._cleanup()
        return code

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the container to exit; its exit code (128+N when killed by signal N)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise
        self._cleanup()
        return code if code >= 0 else 128 - code

    def kill(self, sig: str | int = "KILL", *, timeout: float = 10) -> int | None:
        """Signal the container (default SIGKILL), then remove it; the exit code if it ended."""
        runc = _runc()
        sig_name = sig if isinstance(sig, str) else signal.Signals(sig).name
        if self.process.poll() is None:
            subprocess.run(
                [runc, "--root", RUNC_ROOT, "kill", self.id, sig_name.removeprefix("SIG")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                if sig_name.removeprefix("SIG") != "KILL":
                    return self.kill("KILL", timeout=timeout)
                self.process.kill()  # runc itself; the container is force-deleted below
                self.process.wait(timeout)
        if sig_name.removeprefix("SIG") == "KILL" or self.process.poll() is not None:
            self._cleanup()
        code = self.process.poll()
        return None if code is None else (code if code >= 0 else 128 - code)

    def output(self) -> str:
        """Everything the container wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        runc = shutil.which("runc") or "runc"
        subprocess.run(
            [runc, "--root", RUNC_ROOT, "delete", "--force", self.id],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self._log_file is not None:
            self._log_file.close()
        if self.overlay is not None:
            subprocess.run(["umount", "-l", str(self.overlay)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for sub in ("upper", "work", "merged"):
            shutil.rmtree(self.run_dir / sub, ignore_errors=True)
        with _live_lock:
            _live.pop(self.id, None)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def _kill_all() -> None:
    for c in list(_live.values()):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            c.kill()


atexit.register(_kill_all)


def _overlay(run_dir: Path, lower: Path) -> Path | None:
    """An overlay over the cached rootfs so the cache is never written; None if unsupported."""
    upper, work, merged = run_dir / "upper", run_dir / "work", run_dir / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    r = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if r.returncode != 0:
        return None
    return merged


def _cgroup_path(container_id: str) -> str:
    return f"{CGROUP_PARENT}/{container_id}"


def runtime_config(
    *,
    rootfs: Path,
    argv: Sequence[str],
    env: Sequence[str],
    cwd: str,
    uid: int,
    gid: int,
    read_only_root: bool,
    mounts: Sequence[tuple[str, str, bool]],
    hostname: str,
    container_id: str,
    extra_mounts: Sequence[dict] = (),
    tmp_tmpfs: bool | None = None,
) -> dict:
    """The OCI runtime config.json for one container (host network, own mount/pid/ipc/uts)."""
    oci_mounts: list[dict] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    if read_only_root if tmp_tmpfs is None else tmp_tmpfs:
        oci_mounts.append(
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=1g"],
            }
        )
    oci_mounts.extend(extra_mounts)
    for host_path, container_path, readonly in mounts:
        oci_mounts.append(
            {
                "destination": container_path,
                "type": "bind",
                "source": str(host_path),
                "options": ["rbind", "ro" if readonly else "rw"],
            }
        )
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": list(argv),
            "env": list(env),
            "cwd": cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps if uid == 0 else [],
                "permitted": caps if uid == 0 else [],
            },
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": read_only_root},
        "hostname": hostname,
        "mounts": oci_mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "cgroupsPath": _cgroup_path(container_id),
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }


def run_container(
    *,
    image: str,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    working_dir: str | None = None,
    user: str | int | None = None,
    read_only_root: bool = True,
    mounts: Sequence[tuple[str | Path, str, bool]] = (),
    hostname: str | None = None,
    log_path: str | Path | None = None,
    termination_message_path: str | Path | None = None,
    termination_message_container_path: str = DEFAULT_TERMINATION_MESSAGE_PATH,
    container_id: str | None = None,
    run_dir: str | Path | None = None,
    tmp_tmpfs: bool | None = None,
) -> Container:
    """Start ``image`` under runc and return at once; see the module docstring.

    ``mounts``: ``(host_path, container_path, readonly)`` bind mounts (files or dirs).
    ``user``: ``"uid:gid"``, ``"uid"``, a name from the image's /etc/passwd, or None for
    the image's USER. ``log_path``: the file that gets stdout and stderr (default
    ``<run_dir>/container.log``). ``termination_message_path``: a host file (created,
    world-writable) bind-mounted at ``termination_message_container_path``. ``tmp_tmpfs``:
    mount a tmpfs at /tmp (default: when the root is read-only; a kubelet passes False and
    mounts the Pod's emptyDir volumes instead).
    """
    runc = _runc()
    img = find_image(image)
    lower = prepare_bundle(image)
    cid = container_id or f"ao-{uuid.uuid4().hex[:12]}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", cid):
        raise ContainerError(f"invalid container id {cid!r}")
    hostname = hostname or cid
    rd = Path(run_dir) if run_dir else cache_dir().parent / "run" / cid
    rd.mkdir(parents=True, exist_ok=True)

    argv = resolve_argv(img.config, command, args)
    env_list = _merge_env(img.config.get("Env") or [], env, hostname)
    cwd = working_dir or img.config.get("WorkingDir") or "/"
    uid, gid = _lookup_user(lower, user if user is not None else img.config.get("User"))

    extra: list[dict] = []
    # What kubelet provides: the host's resolver and hosts file (host network), a hostname file.
    (rd / "hostname").write_text(hostname + "\n")
    for host_file, dest in (
        ("/etc/resolv.conf", "/etc/resolv.conf"),
        ("/etc/hosts", "/etc/hosts"),
        (str(rd / "hostname"), "/etc/hostname"),
    ):
        if os.path.exists(host_file):
            extra.append({"destination": dest, "type": "bind", "source": host_file, "options": ["rbind", "ro"]})
    if termination_message_path is not None:
        tm = Path(termination_message_path)
        tm.parent.mkdir(parents=True, exist_ok=True)
        tm.touch()
        os.chmod(tm, 0o666)
        extra.append(
            {
                "destination": termination_message_container_path,
                "type": "bind",
                "source": str(tm),
                "options": ["rbind", "rw"],
            }
        )

    overlay = _overlay(rd, lower)
    rootfs = overlay if overlay is not None else lower
    if overlay is None and not read_only_root:
        raise ContainerError("a writable root needs an overlay mount (kernel overlayfs), which failed here")
    config = runtime_config(
        rootfs=rootfs,
        argv=argv,
        env=env_list,
        cwd=cwd,
        uid=uid,
        gid=gid,
        read_only_root=read_only_root,
        mounts=[(str(h), c, ro) for h, c, ro in mounts],
        hostname=hostname,
        container_id=cid,
        extra_mounts=extra,
        tmp_tmpfs=tmp_tmpfs,
    )
    (rd / "config.json").write_text(json.dumps(config, indent=1))

    log = Path(log_path) if log_path else rd / "container.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log, "ab", buffering=0)  # noqa: SIM115 - the Container owns it and closes it in wait()
    try:
        proc = subprocess.Popen(
            [runc, "--root", RUNC_ROOT, "run", "--bundle", str(rd), "--pid-file", str(rd / "container.pid"), cid],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            cwd=rd,
            start_new_session=True,
        )
    except Exception:
        log_file.close()
        if overlay is not None:
            subprocess.run(["umount", "-l", str(overlay)])
        raise
    c = Container(id=cid, run_dir=rd, log_path=log, process=proc, overlay=overlay, argv=argv, _log_file=log_file)
    with _live_lock:
        _live[cid] = c
    return c


def remove(container_id: str, run_dir: str | Path) -> None:
    """Force-delete a container another process started (e.g. a killed kubelet's) and its overlay."""
    rd = Path(run_dir)
    subprocess.run(
        [shutil.which("runc") or "runc", "--root", RUNC_ROOT, "delete", "--force", container_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if (rd / "merged").is_dir():
        subprocess.run(["umount", "-l", str(rd / "merged")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for sub in ("upper", "work", "merged"):
        shutil.rmtree(rd / sub, ignore_errors=True)


@dataclass(frozen=True)
class Completed:
    exit_code: int
    output: str
    container: Container


def run(image: str, *, timeout: float = 120, **kwargs) -> Completed:
    """Run a container to completion (killed after ``timeout`` seconds); exit code and output."""
    c = run_container(image=image, **kwargs)
    try:
        code = c.wait(timeout)
    except subprocess.TimeoutExpired:
        c.kill()
        raise ContainerError(
            f"container {c.id} ({' '.join(c.argv)}) did not finish in {timeout} s:\n{c.output()}"
        ) from None
    return Completed(exit_code=code, output=c.output(), container=c)
