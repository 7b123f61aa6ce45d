"""The krew manifest pins the archive plugins/build.sh builds, and the archive's launcher runs the plugin."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import yaml

from testbed import tools

PLUGINS = tools.REPO / "plugins"


def test_the_manifest_pins_the_sha256_of_the_archive_build_sh_makes_and_lists_its_files(tmp_path: Path) -> None:
    manifest = yaml.safe_load((PLUGINS / "alembic.yaml").read_text())
    version = manifest["spec"]["version"]
    subprocess.run(["bash", str(PLUGINS / "build.sh"), str(tmp_path)], check=True, capture_output=True)
    archive = tmp_path / f"kubectl-alembic-{version}.tar.gz"
    (platform,) = manifest["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert platform["uri"].endswith(f"/{version}/{archive.name}")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(f["from"] for f in platform["files"])
        tar.extractall(tmp_path / "x", filter="data")
    assert platform["bin"] == "kubectl-alembic" and manifest["metadata"]["name"] == "alembic"
    env = {**os.environ, "PATH": f"{tools.REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    shown = subprocess.run([str(tmp_path / "x" / "kubectl-alembic"), "--help"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "approve" in shown.stdout and "backups" in shown.stdout, shown
