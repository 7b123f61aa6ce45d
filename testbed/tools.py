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
    with open(BUILD_SCRIPT) as script:  # pytest-xdist workers: one builds, the others wait and find it built
        fcntl.flock(script, fcntl.LOCK_EX)
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise MissingTool(f"tools/build.sh failed (exit {proc.returncode}); run `make tools` to see why")
    return Path(proc.stdout.strip().splitlines()[-1])


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
