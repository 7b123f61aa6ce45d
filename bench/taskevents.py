"""How long each step container ran, to the millisecond, from containerd's own task events.

A Pod's status gives ``startedAt``/``finishedAt`` to the second (the API's timestamps): a 1.9 s
step shows as 1 or 2 s, which is ±1 s per step against issue 18's 1 s orchestration budget.
``ctr events`` on the node's containerd prints each task's ``/tasks/start`` and ``/tasks/exit``
with the time containerd published it; the Pod status's ``containerID`` names the step.

Must not: change anything on the node (it only subscribes) or decide what the numbers mean
(:mod:`bench.orchestration` does).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import orchestration

#: ``2026-11-30 07:00:42.123456789 +0000 UTC k8s.io /tasks/exit {...}`` (Go's time.Time, then the event)
_LINE = re.compile(r"^(\S+) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d{4}) \S+ (\S+) (/tasks/(?:start|exit)) (\{.*\})$")


def parse(line: str) -> tuple[str, str, float] | None:
    """``(topic, container id, epoch seconds)`` of a task start or exit line; None for any other line."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    day, clock, fraction, offset, _namespace, topic, body = match.groups()
    at = datetime.strptime(f"{day} {clock} {offset}", "%Y-%m-%d %H:%M:%S %z").timestamp()
    at += float(f"0.{fraction}") if fraction else 0.0
    event = json.loads(body)
    return topic, str(event.get("container_id") or ""), at


def times(lines: Iterable[str], pods: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Each step's container task start and exit (epoch seconds), by the Pod's step label; a step whose
    task did not both start and exit while subscribed is left out (one container per step Pod)."""
    starts: dict[str, float] = {}
    exits: dict[str, float] = {}
    for line in lines:
        parsed = parse(line)
        if parsed is not None:
            topic, container, at = parsed
            (starts if topic == "/tasks/start" else exits).setdefault(container, at)
    out: dict[str, tuple[float, float]] = {}
    for pod in pods:
        step = orchestration.step_of(pod)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            container = str(status.get("containerID") or "").removeprefix("containerd://")
            if step and container in starts and container in exits:
                out[step] = (starts[container], exits[container])
    return out


def spans(task_times: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Seconds each step's container ran (its task's start → exit), from :func:`times`."""
    return {step: end - start for step, (start, end) in task_times.items()}


class Subscription:
    """``ctr events`` against one containerd, its lines kept until :meth:`stop`."""

    def __init__(self, *, ctr: Path, socket: Path) -> None:
        self._argv = [str(ctr), f"--address={socket}", "--namespace=k8s.io", "events"]
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.lines: list[str] = []

    def start(self) -> Subscription:
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, name="ctr-events", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    def stop(self) -> list[str]:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return list(self.lines)
