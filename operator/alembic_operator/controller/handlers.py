"""Kopf wiring: every event becomes one serialised reconcile of one run.

Must not: decide anything (that is :mod:`alembic_operator.controller.reconciler`) or
talk to the API directly (that is :mod:`alembic_operator.kube`).

1. A change of a MigrationRun, of one of its Jobs or of their Pods, a
   scheduled re-check (the Decision's Requeue) or the periodic sweep calls
   :func:`reconcile_run` for that run.
2. ``reconcile_run`` runs one reconcile per run at a time (events meanwhile coalesce into one more pass),
   reads the run fresh, lists its Jobs and Pods, asks the index which run
   goes first on the same database, calls the reconciler and applies the
   Decision (:mod:`alembic_operator.controller.applying`).
3. Deletion: a run mid-way keeps a finalizer; deleting it lets the running
   step finish (a restore is never cut short), starts no further step, lifts
   the write fence (:func:`reconciler.release`), then releases the run; its
   Jobs go with it by owner reference. The backup in S3 stays.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Mapping

import kopf
import pydantic

from alembic_operator.api import constants, model
from alembic_operator.controller import applying, metrics, naming, observing, reconciler, settings as settings_mod
from alembic_operator import kube

log = logging.getLogger(__name__)

_settings = settings_mod.Settings()
#: Runs with a reconcile under way, and those that changed meanwhile (one more pass due).
_running: set[tuple[str, str]] = set()
_dirty: set[tuple[str, str]] = set()
_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
#: The live index of runs (namespace, database label) → summaries; set on first use.
_index: Any = None

SWEEP_SECONDS = 60.0


def configure(settings: settings_mod.Settings) -> None:
    """Set the settings before ``kopf.operator`` starts (called by the ``operator`` command)."""
    global _settings
    _settings = settings


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    asyncio.get_running_loop().create_task(_sweep())


@kopf.index(constants.GROUP, constants.VERSION, constants.PLURAL)
def runs_by_database(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], reconciler.RunSummary]:
    """Index every run under its database, so a run can see who goes first without listing."""
    summary = observing.run_summary(body)
    if summary is None:
        return {}
    return {(namespace, summary.database): summary}


@kopf.on.event(constants.GROUP, constants.VERSION, constants.PLURAL)
async def _on_run(event: Mapping[str, Any], namespace: str, name: str, runs_by_database: kopf.Index,
                  **_: Any) -> None:
    _remember_index(runs_by_database)
    if event.get("type") == "DELETED":
        _forget(namespace, name)
        return
    await reconcile_run(namespace=namespace, name=name)


@kopf.on.event("batch", "v1", "jobs", labels={constants.LABEL_MANAGED_BY: constants.MANAGED_BY})
@kopf.on.event("", "v1", "pods", labels={constants.LABEL_MANAGED_BY: constants.MANAGED_BY})
async def _on_step_object(body: kopf.Body, namespace: str, runs_by_database: kopf.Index, **_: Any) -> None:
    # Pods matter as well as Jobs: a Pod stuck in ErrImagePull or CreateContainerConfigError
    # (a missing Secret) changes nothing on its Job.
    _remember_index(runs_by_database)
    run_name = _owning_run(body, namespace)
    if run_name:
        await reconcile_run(namespace=namespace, name=run_name)


def _remember_index(index: Any) -> None:
    global _index
    _index = index


def _summaries(namespace: str) -> list[reconciler.RunSummary]:
    if _index is None:
        return []
    found = []
    for (ns, _db), store in _index.items():
        if ns == namespace:
            found.extend(store)
    return found


def _owning_run(body: Mapping[str, Any], namespace: str) -> str | None:
    """The run of a Job (owner reference) or Pod (run label, mapped back through the index)."""
    direct = observing.run_name_of(body)
    if direct is None:
        return None
    for summary in _summaries(namespace):
        if naming.label_value(summary.name) == direct:
            return summary.name
    return direct


async def reconcile_run(*, namespace: str, name: str) -> None:
    """Reconcile one run now, serialised with any other reconcile of the same run.

    Events that arrive while a reconcile of the run is under way are coalesced into
    one more pass (it reads everything fresh), instead of queueing one pass each:
    a run's Job and Pod produce a burst of events per step, and under load the
    queue would otherwise grow with every event.
    """
    key = (namespace, name)
    if key in _running:
        _dirty.add(key)
        return
    _running.add(key)
    try:
        after: float | None = None
        while True:
            _dirty.discard(key)
            try:
                after = await asyncio.to_thread(_reconcile_blocking, namespace, name)
                metrics.RECONCILES.labels(result="ok").inc()
            except Exception:  # noqa: BLE001 - retry later, never crash the operator
                metrics.RECONCILES.labels(result="error").inc()
                log.exception("reconcile of %s/%s failed; retrying in 5s", namespace, name)
                after = 5.0
            if key not in _dirty:
                break
    finally:
        _running.discard(key)
    if after is not None:
        _schedule(namespace, name, after)


def _reconcile_blocking(namespace: str, name: str) -> float | None:
    """Read, decide, apply; return seconds until the next check (None: nothing to wait for)."""
    body = kube.get_run(namespace=namespace, name=name)
    if body is None:
        return None
    meta = body["metadata"]
    jobs = kube.list_run_jobs(namespace=namespace, run_name=naming.label_value(name))
    if meta.get("deletionTimestamp"):
        return _finish_deletion(body, jobs)
    now = datetime.now(timezone.utc)
    try:
        view = observing.run_view(body)
    except pydantic.ValidationError as exc:
        decision = reconciler.reject(status=model.parse_status(body.get("status")),
                                     generation=int(meta.get("generation") or 1),
                                     message=model.explain(exc), now=now)
        applying.apply(decision, body=body)
        return None
    pods = kube.list_run_pods(namespace=namespace, run_name=naming.label_value(name))
    # Write fence (issue #9): read the fenced workloads only while the fence is being raised.
    workloads = {reconciler.workload_key(kind, wname): kube.read_workload(namespace=namespace, kind=kind, name=wname)
                 for kind, wname in observing.fence_to_read(view)}
    summary = observing.run_summary(body)
    blocked_by, position = (None, None)
    if summary is not None and summary.phase in (None, model.Phase.PENDING, model.Phase.QUEUED):
        blocked_by, position = reconciler.find_blocker(
            name=name, database=summary.database, creation_timestamp=summary.creation_timestamp,
            others=_summaries(namespace))
    decision = reconciler.reconcile(run=view, observed=observing.observed(jobs, pods, workloads), now=now,
                                    settings=_settings, blocked_by=blocked_by, queue_position=position)
    terminal = decision.status.phase in model.TERMINAL_PHASES
    if not terminal:
        _set_finalizer(body, wanted=True)
    try:
        patched = applying.apply(decision, body=body)
    except kube.JobRejected as exc:
        # The apiserver will refuse this Job every time (e.g. an invalid podTemplate value):
        # retrying forever would hide it, so the run ends Failed and says why.
        decision = reconciler.reject(status=view.status, generation=view.generation, message=str(exc), now=now)
        patched = applying.apply(decision, body=body)
        _set_finalizer(patched or body, wanted=False)
        return None
    if terminal:
        # Write fence (issue #9): the finalizer goes only once the scale-back and the final status are
        # stored, so a run deleted at that instant cannot leave its fence up.
        _set_finalizer(patched or body, wanted=False)
        return None
    return decision.requeue_after or float(_settings.reconcile.poll_seconds)


def _set_finalizer(body: Mapping[str, Any], *, wanted: bool) -> None:
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    has = constants.FINALIZER in finalizers
    if wanted and not has:
        finalizers.append(constants.FINALIZER)
    elif not wanted and has:
        finalizers.remove(constants.FINALIZER)
    else:
        return
    kube.patch_run_metadata(namespace=meta["namespace"], name=meta["name"],
                            metadata={"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]})


def _finish_deletion(body: Mapping[str, Any], jobs: list[dict[str, Any]]) -> float | None:
    """Release a deleted run once no step Job is running; until then check again soon."""
    running = [j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("active")]
    if running:
        log.info("%s/%s is being deleted; waiting for %s to finish", body["metadata"]["namespace"],
                 body["metadata"]["name"], ", ".join(running))
        return 5.0
    # Write fence (issue #9): a deleted run puts the workloads back; the database is left as it is.
    if (body.get("status") or {}).get("fence"):
        decision = reconciler.release(status=model.parse_status(body.get("status")), now=datetime.now(timezone.utc))
        if decision.actions:
            applying.apply(decision, body=body)
            fresh = kube.get_run(namespace=body["metadata"]["namespace"], name=body["metadata"]["name"])
            if fresh is None:
                return None
            body = fresh
    _set_finalizer(body, wanted=False)
    return None


def _schedule(namespace: str, name: str, after: float) -> None:
    key = (namespace, name)
    old = _timers.pop(key, None)
    if old is not None:
        old.cancel()
    loop = asyncio.get_running_loop()
    _timers[key] = loop.call_later(after, lambda: loop.create_task(reconcile_run(namespace=namespace, name=name)))


def _forget(namespace: str, name: str) -> None:
    timer = _timers.pop((namespace, name), None)
    if timer is not None:
        timer.cancel()
    _dirty.discard((namespace, name))


async def _sweep() -> None:
    """Every minute, reconcile each unfinished run: a safety net for lost wake-ups."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        active: dict[str, int] = {}
        for (namespace, _db), store in list((_index or {}).items()):
            for summary in list(store):
                phase = summary.phase.value if summary.phase else "Pending"
                if summary.phase not in model.TERMINAL_PHASES:
                    active[phase] = active.get(phase, 0) + 1
                    await reconcile_run(namespace=namespace, name=summary.name)
        for phase in model.Phase:
            metrics.RUNS_ACTIVE.labels(phase=phase.value).set(active.get(phase.value, 0))
