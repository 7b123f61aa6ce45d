"""Clear away every test bed left on this machine: ``python -m testbed.node clean``.

A ``make test`` interrupted under pytest-xdist (Ctrl-C twice, a killed CI job) can leave each
worker's bed running: etcd, the apiserver, containerd with its pods, the kubelet, PostgreSQL, S3.
A bed kept for inspection (a failed session keeps its directory) holds ~1 GB of containerd
content. :func:`clean` ends the processes (SIGKILL: they are throw-away servers), detaches the
mounts, removes the cgroups, and deletes bed directories and kubectl caches under ``/tmp``;
:func:`testbed.node.leftovers` then says whether anything is left.

Must not: run while a suite runs — it stops every bed on the machine, a running suite's too;
touch anything that is not a bed's (only the markers :mod:`testbed.node` defines are matched).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from testbed import netns, node

TMP = Path("/tmp")
KILL_WAIT_SECONDS = 15


def _kill(pids: list[int]) -> list[str]:
    done = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            done.append(f"process {pid} killed")
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.2)
    return done


def _cgroup_names(cgroup_glob: str) -> list[str]:
    """Beds' cgroup names, once each: :func:`node.bed_cgroups` lists a bed once per hierarchy, and
    :func:`node.cgroup_pids` and :func:`node.cgroup_dirs` already walk every hierarchy."""
    return sorted({top.name for top in node.bed_cgroups(cgroup_glob)})


def _mount_point(mountinfo_line: str) -> str:
    return mountinfo_line.split()[4]


def clean(
    *,
    marker: str = node.BED_DIR_MARKER,
    cgroup_glob: str = f"{node.CGROUP_PREFIX}*",
    network_inode: int | None = None,
) -> list[str]:
    """Stop and remove every bed of this machine; return what was done, one line per thing.

    The defaults match every bed; a bed's own directory name, cgroup and network namespace inode
    narrow it to that bed (as :func:`testbed.node.leftovers` does).
    """
    done: list[str] = []
    # Twice: a kubelet or containerd killed in the first pass may have started a shim meanwhile.
    for _ in range(2):
        # pods' containers live in their own network namespaces: found through the bed's cgroups
        in_cgroups = {pid for name in _cgroup_names(cgroup_glob) for pid in node.cgroup_pids(name)}
        pids = set(node.bed_processes(marker=marker, network_inode=network_inode)) | in_cgroups
        done += _kill(sorted(pids))
    for line in reversed(node.bed_mounts(marker)):
        point = _mount_point(line)
        if subprocess.run(["umount", "-l", point], capture_output=True).returncode == 0:
            done.append(f"mount {point} detached")
    for name in _cgroup_names(cgroup_glob):
        for path in node.cgroup_dirs(name):  # deepest first, in every hierarchy
            try:
                path.rmdir()
                done.append(f"cgroup {path} removed")
            except OSError:
                continue
    caches = TMP.glob(f"{netns.CACHE_DIR_PREFIX}*") if marker == node.BED_DIR_MARKER else []
    for directory in sorted([*TMP.glob(f"{marker}*"), *caches]):
        shutil.rmtree(directory, ignore_errors=True)
        done.append(f"directory {directory} removed")
    return done
