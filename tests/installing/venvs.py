"""A virtualenv with only the base install of alembic-operator (no extras), for tests/installing.

What an application's image would hold without the ``client`` extra: the pinned, hash-checked
base set (image/requirements-base.txt, from image/lock.sh) and this checkout's wheel, nothing
else (no pip, no setuptools: the outer venv's pip installs into it with ``--python``). The
example app's own libraries (examples/app-image/requirements.txt) go to a separate directory
that only a test running the example app puts on PYTHONPATH.

The venv is cached under ``$ALEMBIC_OPERATOR_CACHE/venvs/base-<key>`` (key: the locks, the
interpreter and the checkout), so a repeated run only reinstalls the wheel when the sources
changed. Must not: install from anything but the locks, or touch the project's .venv.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import netns
from tests.installing import locks

ROOT = Path(__file__).resolve().parents[2]
BASE_LOCK = locks.BASE
APP_REQUIREMENTS = locks.EXAMPLE_APP


@dataclass(frozen=True)
class BaseVenv:
    """The cached base-install venv: its ``bin``, and the example app's libraries beside it."""

    root: Path
    app_site: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.root / "bin" / "alembic-operator"

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment: this venv first on PATH, no PYTHONPATH leaking in from the outer test run."""
        return {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            **extra,
        }


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _sources_digest() -> str:
    package = ROOT / "operator"
    files = [ROOT / "pyproject.toml", *sorted(package.rglob("*.py")), *sorted(package.rglob("py.typed"))]
    return _digest(*(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() for f in files))


def _pip(*args: str | Path) -> None:
    """The outer venv's pip (the base venv has none of its own)."""
    proc = subprocess.run(  # pip needs the package index: outside the bed's network namespace
        netns.outside([sys.executable, "-m", "pip", "--quiet", *map(str, args)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"pip {' '.join(map(str, args))} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}", pytrace=False
        )


def _create(venv: Path) -> None:
    """The venv and the app's libraries; ``.complete`` last, so an interrupted build is redone."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    hashed = ("--require-hashes", "--only-binary=:all:")
    _pip("--python", venv / "bin" / "python", "install", *hashed, "-r", BASE_LOCK)
    _pip("install", *hashed, "--no-deps", "--target", venv / "app-site", "-r", APP_REQUIREMENTS)
    (venv / ".complete").touch()


def _install_wheel(venv: Path) -> None:
    """This checkout's wheel, without dependencies (the lock has them), when the sources changed."""
    marker, sources = venv / ".alembic-operator-sources", _sources_digest()
    if marker.exists() and marker.read_text() == sources:
        return
    with tempfile.TemporaryDirectory() as wheels:
        _pip("wheel", "--no-deps", "--wheel-dir", wheels, ROOT)
        (wheel,) = Path(wheels).glob("alembic_operator-*.whl")
        _pip("--python", venv / "bin" / "python", "install", "--no-deps", "--force-reinstall", wheel)
    marker.write_text(sources)


def prepare() -> BaseVenv:
    """The base-install venv of this checkout, created once per lock and refreshed per source change."""
    cache = Path(
        os.environ.get("ALEMBIC_OPERATOR_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alembic-operator"
    )
    key = _digest(BASE_LOCK.read_bytes(), APP_REQUIREMENTS.read_bytes(), sys.version.encode(), str(ROOT).encode())
    venv = cache / "venvs" / f"base-{key}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".lock", "w") as lock:  # parallel sessions share the venv
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            _create(venv)
        _install_wheel(venv)
    return BaseVenv(root=venv, app_site=venv / "app-site")
