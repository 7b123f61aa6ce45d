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
    return _built(BUILD_SCRIPT, builds="etcd, kube-apiserver, kube-controller-manager, kubectl, helm and versitygw")


@functools.cache
def containerd_bin_dir() -> Path:
    """Directory with containerd, its runc shim and ctr; runs tools/containerd/build.sh (cached) if needed."""
    return _built(REPO / "tools" / "containerd" / "build.sh", builds="the real node's containerd")


def _built(script: Path, *, builds: str) -> Path:
    """Run a cached build script of Go modules; the directory it prints last. pytest-xdist workers: one
    builds, the others wait on the script's lock and find it built."""
    if shutil.which("go") is None:
        raise MissingTool(f"Go is not installed: the test bed builds {builds} with it (see README).")
    with open(script) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise MissingTool(f"{script.relative_to(REPO)} failed (exit {proc.returncode}); run `make tools` to see why")
    return Path(proc.stdout.strip().splitlines()[-1])


def binary(name: str) -> Path:
    """Path of one Go-built tool (``kubectl``, ``helm``, ``versitygw`` ...)."""
    return _executable(go_bin_dir(), name)


def containerd_binary(name: str) -> Path:
    """Path of ``containerd``, ``containerd-shim-runc-v2`` or ``ctr`` (tools/containerd)."""
    return _executable(containerd_bin_dir(), name)


def _executable(directory: Path, name: str) -> Path:
    path = directory / name
    if not os.access(path, os.X_OK):
        raise MissingTool(f"{name} not found at {path}; run `make tools`")
    return path


def system_binary(name: str, hint: str) -> Path:
    """Path of a binary expected on PATH; ``hint`` says how to install it."""
    found = shutil.which(name)
    if not found:
        raise MissingTool(f"{name} not found on PATH: {hint}")
    return Path(found)
