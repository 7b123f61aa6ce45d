"""Read a live scale benchmark from ``kubectl get -o json`` dumps of its namespace, without waiting for its end.

The scale benchmark (:mod:`bench.scale`) writes its JSON only when every run has ended; a 1,000-run
trial takes hours on 2 cores. This reads what the API holds at any moment::

    kubectl -n scale get mrun -o json > DIR/runs.json   # likewise jobs.json, pods.json, events.json
    python -m bench.scale_snapshot DIR

and prints the runs' phases, step container ended → next Job created and Job Complete → next Job
created (the API's 1 s timestamps), and how long Pods waited for their container to start, by when
they were created (what a node slowing down under its finished Pods shows).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

RUN_LABEL = "alembic-operator.dev/run"
BUCKET_SECONDS = 900


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    state = statuses[0].get("state") or {}
    return state.get("terminated") or state.get("running") or {}


def report(folder: Path) -> str:
    items = {kind: json.loads((folder / f"{kind}.json").read_text())["items"] for kind in ("runs", "jobs", "pods")}
    lines = [f"phases: {dict(Counter((r.get('status') or {}).get('phase') for r in items['runs']))}"]
    jobs_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in items["jobs"]:
        jobs_of[job["metadata"]["labels"].get(RUN_LABEL, "")].append(job)
    ended, started, created = {}, {}, {}
    for pod in items["pods"]:
        job = pod["metadata"]["labels"].get("job-name")
        state = _container(pod)
        if state.get("finishedAt"):
            ended[job] = _ts(state["finishedAt"])
        if state.get("startedAt"):
            started[job] = _ts(state["startedAt"])
        created[job] = _ts(pod["metadata"]["creationTimestamp"])
    from_pod, from_job = [], []
    for run_jobs in jobs_of.values():
        ordered = sorted(run_jobs, key=lambda j: j["metadata"]["creationTimestamp"])
        for before, after in itertools.pairwise(ordered):
            next_created = _ts(after["metadata"]["creationTimestamp"])
            assert next_created is not None
            if (end := ended.get(before["metadata"]["name"])) is not None:
                from_pod.append(next_created - end)
            if (complete := _ts((before.get("status") or {}).get("completionTime"))) is not None:
                from_job.append(next_created - complete)
    for label, values in (("step container ended → next Job", from_pod), ("Job Complete → next Job", from_job)):
        if values:
            lines.append(
                f"{label}: n={len(values)} median={statistics.median(values):.2f} s p95={_pct(values, 95):.2f} s "
                f"p99={_pct(values, 99):.2f} s max={max(values):.2f} s"
            )
    first = min((_ts(r["metadata"]["creationTimestamp"]) or 0.0) for r in items["runs"])
    waits: dict[int, list[float]] = defaultdict(list)
    for job, made in created.items():
        if made is not None and (start := started.get(job)) is not None:
            waits[int((made - first) // BUCKET_SECONDS)].append(start - made)
    for bucket, values in sorted(waits.items()):
        minutes = bucket * BUCKET_SECONDS // 60
        lines.append(
            f"Pods created {minutes}-{minutes + BUCKET_SECONDS // 60} min: n={len(values)} created → container "
            f"started median {statistics.median(values):.0f} s, p95 {_pct(values, 95):.0f} s"
        )
    lines.append(f"Jobs {len(items['jobs'])}, Pods {len(items['pods'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1])))
