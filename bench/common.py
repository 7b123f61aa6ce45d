"""Small helpers shared by the benchmarks: timed commands, tables, results."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1000 * 1000


class CommandFailed(RuntimeError):
    pass


def timed(
    argv: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    shell: bool = False,
    cwd: str | Path | None = None,
    stdout: Any = subprocess.DEVNULL,
) -> float:
    """Run a command to completion; its wall time in seconds. CommandFailed (with stderr) if it fails."""
    wall, _cpu = timed_cpu(argv, env=env, shell=shell, cwd=cwd, stdout=stdout)
    return wall


def timed_cpu(
    argv: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    shell: bool = False,
    cwd: str | Path | None = None,
    stdout: Any = subprocess.DEVNULL,
) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys of the command and every descendant it waited for).

    The CPU figure is what the client side burns (pg_dump, Python, pg_restore, psql); it is much
    less sensitive than wall time to other loads on the machine. Server processes (PostgreSQL
    backends, the S3 server) are not in it.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        argv if shell else list(map(str, argv)),
        env=dict(env) if env else None,
        shell=shell,
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        executable="/bin/bash" if shell else None,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise CommandFailed(
            f"{argv if shell else ' '.join(map(str, argv))} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')[-1500:]}"
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, round(cpu, 3)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (also readable on a terminal)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    return path


def say(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
