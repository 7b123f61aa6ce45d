"""Builds the images once per session (image/build.sh, cached by content) for tests/image."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_REPORT: list[str] = []
_FAILED: list[str] = []  # a failed build fails every test at once, without rebuilding


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/image need root (buildah vfs storage, runc)", pytrace=False)
    missing = [
        t
        for t in ("debootstrap", "buildah", "runc", "umoci")
        if not shutil.which(t) and not os.path.exists(f"/usr/sbin/{t}")
    ]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run `make image-deps` (bash image/install-deps.sh) as root", pytrace=False
        )


@pytest.fixture(scope="session")
def built_images() -> dict[str, str]:
    """Runs `image/build.sh all` (a no-op when nothing changed); the name -> ref map."""
    _require_tools()
    if _FAILED:
        pytest.fail(_FAILED[0], pytrace=False)
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "image" / "build.sh"), "all"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.monotonic() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[image")]
    _REPORT.extend([*lines, f"[image] image/build.sh all: {elapsed:.1f} s wall"])
    if proc.returncode != 0:
        _FAILED.append(f"image/build.sh failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}")
        pytest.fail(_FAILED[0], pytrace=False)
    return {"operator": "alembic-operator:dev", "example-app": "example-app:dev"}


def pytest_terminal_summary(terminalreporter):  # sizes and build times in the summary
    if _REPORT:
        terminalreporter.section("images")
        for line in _REPORT:
            terminalreporter.write_line(line)
