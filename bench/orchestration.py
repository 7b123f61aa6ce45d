"""What the operator adds around its steps (issue 18), from one run's objects and the operator's requests.

- Orchestration of a run: its wall time minus the time its step containers ran, per step. The
  overhead benchmark takes the containers' times from containerd's task events
  (:mod:`bench.taskevents`, milliseconds); :func:`container_spans` reads the Pods' own
  (``state.terminated.startedAt`` → ``finishedAt``, 1 s resolution), shown beside them.
- Reads and writes per run, from the operator's request counts (bench/apicount): reads are GETs and
  LISTs (watches excluded: a watch is one long request per resource, not per run), writes are
  broken down into Events, status patches, Job creates/deletes and the rest (finalizers).
- Percentiles of latencies (nearest rank).

Must not: start anything or talk to the API (the benchmarks pass the objects in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 to 100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def step_of(obj: Mapping[str, Any]) -> str | None:
    """The step a Job or Pod runs (its ``alembic-operator.dev/step`` label)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get("alembic-operator.dev/step")


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def container_spans(pods: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Seconds each step's container ran (its terminated state, as the node reported it), by step label."""
    spans: dict[str, float] = {}
    for pod in pods:
        step = step_of(pod)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            ended = (status.get("state") or {}).get("terminated") or {}
            started, finished = _ts(ended.get("startedAt")), _ts(ended.get("finishedAt"))
            if step and started is not None and finished is not None:
                spans[step] = spans.get(step, 0.0) + finished - started
    return spans


def startup_spans(jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Seconds from each step's Job created to its container started (the Job controller, scheduler, kubelet
    and containerd: none of it the operator's), by step label; server timestamps, 1 s resolution."""
    created = {step_of(j): _ts((j.get("metadata") or {}).get("creationTimestamp")) for j in jobs}
    spans: dict[str, float] = {}
    for pod in pods:
        step = step_of(pod)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            started = _ts(((status.get("state") or {}).get("terminated") or {}).get("startedAt"))
            if step and started is not None and created.get(step) is not None:
                spans[step] = started - created[step]  # type: ignore[operator]
    return spans


def orchestration(run_wall: float | None, spans: Mapping[str, float]) -> dict[str, Any]:
    """The run's wall time minus its containers' time, in all and per step."""
    if run_wall is None or not spans:
        return {"containers_s": None, "orchestration_s": None, "per_step_s": None}
    containers = sum(spans.values())
    return {
        "containers_s": round(containers, 2),
        "orchestration_s": round(run_wall - containers, 2),
        "per_step_s": round((run_wall - containers) / len(spans), 2),
    }


def reads_and_writes(requests: Mapping[str, int], runs: int) -> dict[str, Any]:
    """Per run: reads (GET and LIST, no watches) and writes by kind, from bench/apicount's keys
    (``METHOD[ (watch)] /path`` with names as ``{name}``)."""
    reads = writes = 0
    kinds = {"events": 0, "status": 0, "jobs": 0, "other": 0}
    for key, count in requests.items():
        method, _, path = key.partition(" /")
        if "(watch)" in method:
            continue
        if method == "GET":
            reads += count
            continue
        writes += count
        if path.endswith("/events"):
            kinds["events"] += count
        elif path.endswith("/status"):
            kinds["status"] += count
        elif "/jobs" in path:
            kinds["jobs"] += count
        else:
            kinds["other"] += count
    per = max(runs, 1)
    return {
        "reads_per_run": round(reads / per, 2),
        "writes_per_run": round(writes / per, 2),
        "writes_by_kind_per_run": {k: round(v / per, 2) for k, v in kinds.items()},
    }


def describe_writes(d: Mapping[str, Any]) -> str:
    kinds = d["writes_by_kind_per_run"]
    return (
        f"{d['writes_per_run']} (Events {kinds['events']}, status {kinds['status']}, Jobs {kinds['jobs']}, "
        f"other {kinds['other']})"
    )
