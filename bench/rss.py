"""Peak memory of a step run by hand: its whole process tree, and its Python process alone.

A step pod's memory limit applies to everything in the container: the Python step, and the
pg_dump / pg_restore / psql it starts. :func:`timed` runs the command like
:func:`bench.common.timed_cpu` and samples ``/proc`` every :data:`INTERVAL` seconds: the sum of
the tree's resident set sizes, and the top process's own. A sample can miss a spike shorter
than the interval; the kernel's own high-water mark (``VmHWM``) of the top process is read too,
and the larger figure kept for it.

Must not: be used for timing claims finer than the interval (it adds a thread that reads /proc).
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import CommandFailed

INTERVAL = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024


@dataclass
class Peak:
    tree: int = 0
    """Largest sum of RSS over the process and its descendants, bytes."""
    python: int = 0
    """Largest RSS of the top process (the step), bytes."""


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def timed(argv: Sequence[object], *, env: Mapping[str, str] | None = None) -> tuple[float, float, Peak]:
    """(wall seconds, client CPU seconds, peak memory) of ``argv``; CommandFailed if it fails."""
    peak = Peak()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(map(str, argv)), env=dict(env) if env else None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    done = threading.Event()

    def sample() -> None:
        while not done.wait(INTERVAL):
            pids = _tree(proc.pid)
            peak.tree = max(peak.tree, sum(_rss(p) for p in pids))
            peak.python = max(peak.python, _rss(proc.pid), _hwm(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, argv))} exited {proc.returncode}: {stderr.decode()[-1500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, round(cpu, 3), peak


def mib(tree: int | None, python: int | None) -> str:
    """``"123 (45)"`` for a table cell; ``—`` when not measured (older results)."""
    if not tree:
        return "—"
    return f"{tree / MiB:,.0f} ({(python or 0) / MiB:,.0f})"
