"""`python -m testbed.node clean` (testbed/sweep.py) removes a bed whose test process was killed.

An interrupted ``make test`` leaves its beds running: the servers run in their own sessions, so
they outlive a SIGKILLed pytest. The child process below is such a pytest: it starts a whole bed
(network namespace, etcd, apiserver, controller manager, scheduler, containerd, kubelet) and is
killed. The bed is then still there (checked, so the test could fail), and after the sweep —
narrowed to this bed, since other xdist workers' beds run meanwhile — nothing of it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from testbed import netns, node, sweep, tools

CHILD = """
import json, sys, time
from pathlib import Path
from testbed.node import NodeBed
bed = NodeBed(Path(sys.argv[1])).start()
print(json.dumps({"cgroup": bed.node.cgroup, "network_inode": bed.network_inode}), flush=True)
time.sleep(600)
"""


def test_clean_removes_a_bed_whose_test_process_was_killed() -> None:
    workdir = Path(tempfile.mkdtemp(prefix=node.BED_DIR_MARKER, dir="/tmp"))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tools.REPO,
        env={**os.environ, "PYTHONPATH": str(tools.REPO)},
    )
    assert child.stdout is not None
    started = json.loads(child.stdout.readline())
    scope = {"marker": workdir.name, "cgroup_glob": started["cgroup"], "network_inode": started["network_inode"]}
    # pinned so its number cannot pass to another worker's new namespace once the sweep empties it
    with netns.pinned(started["network_inode"]):
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

        left = node.leftovers(**scope)
        assert any("kubelet" in line for line in left), left
        assert any("etcd" in line for line in left), left

        done = sweep.clean(**scope)

        assert node.leftovers(**scope) == []
    assert not workdir.exists()
    assert any(line.startswith("cgroup ") for line in done), done
