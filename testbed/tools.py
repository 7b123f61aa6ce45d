"""Find the test-bed binaries, building them with ``tools/build.sh`` when missing.

A missing binary is a loud failure with the command that provides it, never a skip.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "tools" / "build.sh"
GO_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
    "helm",
    "versitygw",
    "pause",
)


class MissingTool(RuntimeError):
    """A binary or server the test bed needs is not available."""


@functools.cache
def go_bin_dir() -> Path:
    """Directory with the Go-built tools; runs tools/build.sh (cached by version) if needed."""
    override = os.environ.get("ALEMBIC_OPERATOR_TOOLS_BIN")
    if override:
        return Path(override)
    if shutil.which("go") is None:
        raise MissingTool(
            "Go is not installed: the test bed builds etcd, kube-apiserver, "
            "kube-controller-manager, kubectl, helm and versitygw with it (see README)."
        )
    return _built(BUILD_SCRIPT)


def _built(script: Path) -> Path:
    """Run a cached build script; the directory it prints last. pytest-xdist workers: one builds, the
    others wait on the script's lock and find it built."""
    with open(script) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise MissingTool(f"{script.relative_to(REPO)} failed (exit {proc.returncode}); run `make tools` to see why")
    return Path(proc.stdout.strip().splitlines()[-1])


@functools.cache
def containerd_bin_dir() -> Path:
    """Directory with containerd, its runc shim and ctr; runs tools/containerd/build.sh (cached) if needed."""
    if shutil.which("go") is None:
        raise MissingTool("Go is not installed: the real node builds containerd with it (see README).")
    return _built(REPO / "tools" / "containerd" / "build.sh")


def containerd_binary(name: str) -> Path:
    """Path of ``containerd``, ``containerd-shim-runc-v2`` or ``ctr`` (tools/containerd)."""
    path = containerd_bin_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingTool(f"{name} not found at {path}; run `make tools`")
    return path


def binary(name: str) -> Path:
    """Path of one Go-built tool (``kubectl``, ``helm``, ``versitygw`` ...)."""
    path = go_bin_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingTool(f"{name} not found at {path}; run `make tools`")
    return path


def system_binary(name: str, hint: str) -> Path:
    """Path of a binary expected on PATH; ``hint`` says how to install it."""
    found = shutil.which(name)
    if not found:
        raise MissingTool(f"{name} not found on PATH: {hint}")
    return Path(found)
