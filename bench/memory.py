"""Memory of the operator's indexes per run (issue 18): what Kopf's indexes hold for N finished runs.

No test bed: N runs as the apiserver returns them (a kubectl-applied run with its status after
four steps, its four step Jobs and their Pods with the node's status and managedFields) are put
through the operator's index functions (``observing.slim_*`` + ``plain``, as
``controller/indexes.py`` does) and measured with tracemalloc, next to keeping the objects
whole. The operator's process adds its imports and Kopf's own per-object state on top (the
scale benchmark's ``--tracemalloc`` shows those).
"""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
from typing import Any

from alembic_operator.api import constants
from alembic_operator.controller import observing
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.settings import Settings
from bench.common import table

STEPS = ("plan", "backup", "migrate", "verify")
MANAGED = [{"manager": m, "operation": "Update", "fieldsV1": {"f:status": {"f:phase": {}}}} for m in ("kcm", "op")]
SPEC = {
    "database": {"urlSecretRef": {"name": "db-0", "key": "DATABASE_URL"}},
    "migrate": {"image": "example-app:dev"},
    "backup": {
        "s3": {"bucket": "backups", "endpoint": "http://10.201.0.1:7070", "credentialsSecretRef": {"name": "s3"}}
    },
}


def _run(i: int) -> dict[str, Any]:
    meta = {"name": f"scale-{i}", "namespace": "scale", "uid": f"00000000-0000-0000-0000-{i:012d}"}
    run = {"apiVersion": constants.API_VERSION, "kind": constants.KIND, "metadata": meta, "spec": copy.deepcopy(SPEC)}
    meta["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(run)}
    meta |= {"generation": 1, "resourceVersion": str(1000 + i), "creationTimestamp": "2026-03-01T12:00:00Z"}
    meta |= {"finalizers": [constants.FINALIZER], "managedFields": MANAGED}
    step = {"attempt": 1, "startedAt": "2026-03-01T12:00:00Z", "finishedAt": "2026-03-01T12:00:09Z"}
    run["status"] = {
        "phase": "Succeeded",
        "message": "migrated 0003 → 0004; verified 4 tables",
        "steps": {
            s: step | {"job": f"scale-{i}-{s}-abcde", "outcome": "Succeeded", "message": "ok" * 40} for s in STEPS
        },
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": "Succeeded",
                "message": "x" * 80,
                "lastTransitionTime": "2026-03-01T12:00:09Z",
            }
            for t in "ABCDEFG"
        ],
    }
    return run


def _job_and_pod(run: dict[str, Any], step: str) -> tuple[dict[str, Any], dict[str, Any]]:
    view = observing.run_view(run)
    job = job_builders.build_step_job(run=view, step=step, settings=Settings())
    job["metadata"] |= {"uid": f"{step}-{view.uid}", "creationTimestamp": "2026-03-01T12:00:00Z"}
    job["metadata"]["managedFields"] = MANAGED
    job["status"] = {"succeeded": 1, "startTime": "2026-03-01T12:00:01Z", "completionTime": "2026-03-01T12:00:10Z"}
    job["status"]["conditions"] = [{"type": t, "status": "True", "lastProbeTime": "x"} for t in ("Complete", "X")]
    terminated = {"exitCode": 0, "reason": "Completed", "message": json.dumps({"v": 1, "data": "y" * 900})}
    pod = {
        "metadata": job["spec"]["template"]["metadata"]
        | {"name": job["metadata"]["name"] + "-p", "namespace": "scale", "uid": "p" + view.uid}
        | {"ownerReferences": [{"kind": "Job", "uid": job["metadata"]["uid"], "controller": True}]}
        | {"managedFields": MANAGED, "creationTimestamp": "2026-03-01T12:00:01Z"},
        "spec": copy.deepcopy(job["spec"]["template"]["spec"]),
        "status": {
            "phase": "Succeeded",
            "podIP": "10.202.0.7",
            "conditions": [{"type": t, "status": "False"} for t in ("Ready", "Initialized", "PodScheduled")],
            "containerStatuses": [
                {"name": "step", "image": "x" * 60, "imageID": "y" * 80, "state": {"terminated": terminated}}
            ],
        },
    }
    return job, pod


def _held(n: int, *, slim: bool) -> int:
    """Bytes tracemalloc sees for the index contents of ``n`` runs."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held: list[Any] = []
    for i in range(n):
        run = _run(i)
        objects = [_job_and_pod(run, step) for step in STEPS]
        if slim:
            held.append(observing.plain(observing.slim_run(run)))
            for job, pod in objects:
                held += [observing.plain(observing.slim_job(job)), observing.plain(observing.slim_pod(pod))]
        else:
            held += [run, *(o for pair in objects for o in pair)]
        del run, objects
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del held
    return size


def run(*, runs: int) -> dict[str, Any]:
    slim, whole = _held(runs, slim=True), _held(runs, slim=False)
    return {
        "runs": runs,
        "slim_kib_per_run": round(slim / runs / 1024, 1),
        "whole_kib_per_run": round(whole / runs / 1024, 1),
        "slim_mib": round(slim / 2**20, 1),
        "whole_mib": round(whole / 2**20, 1),
    }


def render(d: dict[str, Any]) -> str:
    return table(
        f"Memory of the operator's indexes for {d['runs']:,} finished runs (run + 4 Jobs + 4 Pods each; tracemalloc)",
        ["kept", "per run", f"{d['runs']:,} runs"],
        [
            ["slim (what controller/indexes.py keeps)", f"{d['slim_kib_per_run']} KiB", f"{d['slim_mib']} MiB"],
            ["whole objects (as listed)", f"{d['whole_kib_per_run']} KiB", f"{d['whole_mib']} MiB"],
        ],
    )
