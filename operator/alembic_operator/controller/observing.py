"""Turn what the API returned (plain dicts) into the reconciler's inputs, and keep only what they need.

The ``slim_*`` functions cut a Job, Pod or run down to the fields the reconciler, the queue and
applying read: the operator's Kopf indexes (:mod:`.indexes`) hold those, one per object, for
every run at once, so their size is the operator's memory at scale. A field read from these
objects anywhere in the controller must be kept here (tests/unit/test_slimming.py reads each
object both ways).

Must not: call the API (the handler passes the objects in) or decide anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from alembic_operator.api import constants, model, refs, text
from alembic_operator.controller import naming, reconciler


def run_view(body: Mapping[str, Any]) -> model.RunView:
    """The RunView of a MigrationRun object; raises pydantic.ValidationError on a bad spec."""
    meta = body["metadata"]
    return model.RunView(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        spec=model.parse_spec(dict(body.get("spec") or {})),
        status=model.parse_status(dict(body.get("status") or {})),
        generation=int(meta.get("generation") or 1),
        creation_timestamp=text.parse_timestamp(meta.get("creationTimestamp")),
        annotations=dict(meta.get("annotations") or {}),
    )


def observed_jobs(
    jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], *, run_uid: str
) -> reconciler.Observed:
    """This run's Jobs, each with its Pods, into an Observed.

    Ownership, not names (issue 14, finding 5): a Job counts only when its controller is the run
    (``run_uid``), a Pod only when its controller is one of those Jobs (by uid). A look-alike Job
    or Pod with the right labels and names is ignored; creating the step's Job then meets it
    (409) and :func:`.apiserver.create_job` refuses to adopt it.
    """
    ours = [job for job in jobs if refs.controller_uid(job) == run_uid]
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        owner = refs.controller_uid(pod)
        if owner is not None:
            by_job.setdefault(owner, []).append(pod)
    return reconciler.Observed.of(
        *(reconciler.JobObservation.from_manifests(job, by_job.get(job["metadata"].get("uid", ""), ())) for job in ours)
    )


def observed(
    jobs: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    workloads: Mapping[str, Mapping[str, int] | None] | None = None,
    *,
    run_uid: str,
) -> reconciler.Observed:
    """This run's Jobs with their Pods (:func:`observed_jobs`), plus fenced workloads as
    :func:`.apiserver.read_workload` returned them (keyed by :func:`reconciler.workload_key`; None = the
    workload does not exist)."""
    base = observed_jobs(jobs, pods, run_uid=run_uid)
    seen = {
        key: reconciler.WorkloadObservation(exists=False)
        if read is None
        else reconciler.WorkloadObservation(
            replicas=int(read.get("replicas", 0)), current=int(read.get("current", 0)), pods=int(read.get("pods", 0))
        )
        for key, read in (workloads or {}).items()
    }
    return reconciler.Observed(jobs=base.jobs, workloads=seen)


def fence_to_read(view: model.RunView) -> list[tuple[str, str]]:
    """(kind, name) of the fenced workloads the reconciler needs to see now: only while the fence is
    being raised (before it is recorded, or while pods stop), never once it is up or lifted."""
    fence = view.spec.write_fence
    if fence is None or not fence.scale_down or view.status.phase in model.TERMINAL_PHASES:
        return []
    if view.status.fence is not None and view.status.fence.state != "Raising":
        return []
    return [(t.kind, t.name) for t in fence.scale_down]


def run_summary(body: Mapping[str, Any]) -> reconciler.RunSummary | None:
    """What the queue needs to know of a run; None for a run whose spec does not parse."""
    meta = body["metadata"]
    try:
        spec = model.parse_spec(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        return None
    phase = (body.get("status") or {}).get("phase")
    return reconciler.RunSummary(
        name=meta["name"],
        database=naming.database_label(spec, meta["namespace"]),
        creation_timestamp=text.parse_timestamp(meta.get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC),
        phase=model.Phase(phase) if phase else None,
        namespace=meta["namespace"],
    )


def run_name_of(obj: Mapping[str, Any]) -> str | None:
    """The run a Job or Pod belongs to, from its owner reference or label."""
    meta = obj.get("metadata", {})
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == constants.KIND:
            return str(ref["name"])
    return (meta.get("labels") or {}).get(constants.LABEL_RUN)


#: Annotations no reconcile reads and that can be large (kubectl's copy of the whole object, Kopf's state).
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "kopf.zalando.org/")


def _slim_meta(meta: Mapping[str, Any], *extra: str) -> dict[str, Any]:
    kept = {
        k: meta[k] for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", *extra) if k in meta
    }
    owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")]
    if owners:
        kept["ownerReferences"] = [{k: ref.get(k) for k in ("kind", "name", "uid", "controller")} for ref in owners]
    return kept


def slim_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """A step Job as :meth:`reconciler.JobObservation.from_manifests` and deletion read it."""
    status = job.get("status") or {}
    fields = ("active", "succeeded", "failed", "terminating", "startTime", "completionTime")
    kept = {k: status[k] for k in fields if k in status}
    kept["conditions"] = [
        {k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
        for c in status.get("conditions") or []
    ]
    return {"metadata": _slim_meta(job.get("metadata") or {}), "status": kept}


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A step Pod as :meth:`reconciler.PodObservation.from_manifest` reads it (only the step container's state
    and the restart policy that makes a terminated state final), plus its IP, where a running backup or
    restore serves its progress."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    container = next((c for c in statuses if c.get("name") == "step"), statuses[0] if statuses else None)
    kept = {k: status[k] for k in ("phase", "reason", "message", "podIP") if k in status}  # podIP: progress.py
    if container is not None:
        kept["containerStatuses"] = [{k: container[k] for k in ("name", "state", "lastState") if k in container}]
    slim: dict[str, Any] = {"metadata": _slim_meta(pod.get("metadata") or {}), "status": kept}
    if "restartPolicy" in (pod.get("spec") or {}):
        slim["spec"] = {"restartPolicy": pod["spec"]["restartPolicy"]}
    return slim


def slim_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """A MigrationRun as a reconcile reads it: spec, status and the metadata it uses (finalizers, version)."""
    meta = run.get("metadata") or {}
    kept = _slim_meta(meta, "generation", "resourceVersion", "finalizers", "labels")
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_DROPPED_ANNOTATIONS)}
    if annotations:
        kept["annotations"] = annotations
    return {"metadata": kept, "spec": run.get("spec") or {}, "status": run.get("status") or {}}


def plain(value: Any) -> Any:
    """A copy made of plain dicts and lists (Kopf hands its indexes views over its own objects)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def newest(*runs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The run body with the highest resourceVersion (the apiserver's are etcd revisions, increasing
    integers); None when there is none. A version that is not a number counts as oldest."""

    def version(run: Mapping[str, Any]) -> int:
        value = str((run.get("metadata") or {}).get("resourceVersion") or "")
        return int(value) if value.isdigit() else -1

    present = [run for run in runs if run is not None]
    return max(present, key=version, default=None)
