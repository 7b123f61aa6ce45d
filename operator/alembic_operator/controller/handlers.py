"""Kopf wiring: every event becomes one serialised reconcile of one run.

Must not: decide anything (that is :mod:`alembic_operator.controller.reconciler`) or
talk to the API directly (that is :mod:`alembic_operator.controller.apiserver`).

1. A change of a MigrationRun, of one of its Jobs or of their Pods, a
   scheduled re-check (the Decision's Requeue) or the safety net (one loop over all runs,
   :func:`_safety_net`) calls :func:`reconcile_run` for that run.
2. ``reconcile_run`` runs one reconcile per run at a time (events meanwhile coalesce into one more pass),
   takes the run, its Jobs and Pods from Kopf's indexes (:mod:`.indexes`: the watches Kopf holds, no
   LIST or GET), asks the index which run goes first on the same database, calls the reconciler and
   applies the Decision (:mod:`alembic_operator.controller.applying`).
3. Deletion: a run mid-way keeps a finalizer; deleting it lets the running
   step finish (a restore is never cut short), starts no further step, lifts
   the write fence (:func:`reconciler.release`), then releases the run; its
   Jobs go with it by owner reference. The backup in S3 stays.
4. An ended run's step Jobs go ``JobSettings.retain_seconds`` after it ended (:mod:`.collecting`, one loop
   over the indexes); its status keeps every result.

State lives in one :class:`ControllerMemo`, passed to ``kopf.operator(memo=...)`` by
:mod:`alembic_operator.controller.main` and handed to every handler as Kopf's ``memo``
(see Kopf's ``docs/memos.rst``): no module globals.

Why our own per-run coalescing: Kopf serialises handlers per *object*, but a run's
Jobs and Pods are other objects than the run, so their events reach
:func:`_on_step_object` concurrently with the run's own :func:`_on_run`, the
scheduled re-checks and the timer. Without :func:`reconcile_run`'s guard two
reconciles of one run could decide at once (e.g. both create the next Job's
status entry), and a burst of N Pod events would queue N full passes; with it they
become at most one more pass, which takes a new snapshot of the indexes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
import pydantic

from alembic_operator.api import conditions, constants, model
from alembic_operator.controller import (
    apiserver,
    applying,
    collecting,
    connecting,
    finalizing,
    indexes,
    lines,
    metrics,
    naming,
    observing,
    reconciler,
    sweeping,
)
from alembic_operator.controller import progress as _progress  # noqa: F401 (registers its start-up handler)
from alembic_operator.controller import settings as settings_mod

log = logging.getLogger(__name__)

RunKey = tuple[str, str]
"""(namespace, name) of a MigrationRun."""

RunIndex = lines.RunIndex
"""Kopf's live index :func:`runs_by_database`: (namespace, database label) → summaries of its runs."""

SAFETY_NET_SECONDS = 60.0
"""Interval of :func:`_safety_net`: how long a lost wake-up can delay an unfinished run at most."""

RETRY_SECONDS = 5.0
"""Seconds before a reconcile that raised is tried again; doubled for each further failure in a row."""

RETRY_MAX_SECONDS = 300.0
"""The longest wait between retries of a run whose reconcile keeps raising."""


@dataclasses.dataclass
class ControllerMemo:
    """The operator's in-memory state: one instance shared by every handler (never copied per object)."""

    settings: settings_mod.Settings = dataclasses.field(default_factory=settings_mod.Settings)
    api_connections: int = connecting.pool_size(namespaces=0)
    """Kopf's pool of API connections (:mod:`.connecting`, which registers Kopf's login)."""
    running: set[RunKey] = dataclasses.field(default_factory=set)
    """Runs with a reconcile under way."""
    dirty: set[RunKey] = dataclasses.field(default_factory=set)
    """Runs that changed during their reconcile: one more pass is due."""
    timers: dict[RunKey, asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    """The scheduled re-check of each run (the Decision's requeue)."""
    index: RunIndex | None = None
    """Kopf's live index of runs, stored at start-up."""
    indexes: indexes.Indexes = dataclasses.field(default_factory=indexes.Indexes)
    """Kopf's indexes of the runs, their Jobs and Pods, and our last write of each run: what a reconcile reads."""
    failures: dict[RunKey, int] = dataclasses.field(default_factory=dict)
    """Reconciles of each run that raised in a row (reset by one that did not)."""
    last_reconciled: dict[RunKey, float] = dataclasses.field(default_factory=dict)
    """Loop time each run's last reconcile pass began (the safety net skips runs reconciled within a minute)."""
    background: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    """The operator-wide loops (:mod:`.sweeping`): the safety net and the progress poll."""
    retry_at: dict[RunKey, float] = dataclasses.field(default_factory=dict)
    """Loop time of each failing run's next retry: until then only its retry or its deletion reconciles it,
    so Job, Pod and status events cannot turn a reconcile that keeps raising into a hot loop."""

    def __copy__(self) -> ControllerMemo:
        # Kopf copies the operator's memo into each object's memo; the runs' coalescing needs one shared state.
        return self


@kopf.index(constants.GROUP, constants.VERSION, constants.PLURAL)
def runs_by_database(body: kopf.Body, namespace: str | None, **_: Any) -> dict[tuple[str, str], reconciler.RunSummary]:
    """Index every run under its database, so a run can see who goes first without listing."""
    summary = observing.run_summary(body)
    if summary is None or namespace is None:
        return {}
    return {(namespace, summary.database): summary}


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, memo: ControllerMemo, **indices: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Kopf passes its indices to start-up handlers too; the object is live (filled as runs are listed).
    memo.index = indices["runs_by_database"]  # an index is passed under its function's name
    memo.indexes.attach(indices)
    sweeping.start(memo, SAFETY_NET_SECONDS, lambda: _safety_net(memo), what="safety net")
    sweeping.start(
        memo, collecting.SWEEP_SECONDS, lambda: collecting.sweep(memo.indexes, memo.settings.jobs), what="job cleanup"
    )


@kopf.on.event(constants.GROUP, constants.VERSION, constants.PLURAL)
async def _on_run(type: str, body: kopf.Body, namespace: str | None, name: str, memo: ControllerMemo, **_: Any) -> None:
    if namespace is None:
        return
    # Kopf updates the index before the handlers of the same event: the gauge sees this change already.
    _count_active_runs(memo)
    phase = (body.get("status") or {}).get("phase")
    ended = type == "DELETED" or phase in model.TERMINAL_PHASE_VALUES
    now = asyncio.get_running_loop().time()
    for waiting in lines.next_on_database(memo.index, namespace, body, memo.retry_at, now) if ended else ():
        _schedule(memo, namespace, waiting, 0)  # its turn may have come: not at its next queued poll
    limit = memo.settings.reconcile.max_running_runs
    if limit is not None and (ended or phase in lines.HOLDING_NO_SLOT):  # it holds no slot (any more)
        for other_namespace, waiting in lines.next_for_slot(memo.index, limit, memo.retry_at, now):
            _schedule(memo, other_namespace, waiting, 0)
    if type == "DELETED":
        _forget(memo, namespace, name)
        return
    deleting = bool(body.get("metadata", {}).get("deletionTimestamp"))
    await reconcile_run(memo, namespace=namespace, name=name, urgent=deleting)


@kopf.on.event("batch", "v1", "jobs", labels={constants.LABEL_MANAGED_BY: constants.MANAGED_BY})
@kopf.on.event("", "v1", "pods", labels={constants.LABEL_MANAGED_BY: constants.MANAGED_BY})
async def _on_step_object(body: kopf.Body, namespace: str | None, memo: ControllerMemo, **_: Any) -> None:
    # Pods matter as well as Jobs: a Pod stuck in ErrImagePull or CreateContainerConfigError
    # (a missing Secret) changes nothing on its Job.
    if namespace is None:
        return
    run_name = _owning_run(memo, body, namespace)
    if run_name and not memo.indexes.settled(namespace, run_name):
        await reconcile_run(memo, namespace=namespace, name=run_name)


async def _safety_net(memo: ControllerMemo) -> None:
    """Reconcile each unfinished run that has been quiet for a minute: a safety net for lost wake-ups.

    Events and the Decision's requeue drive every run; this only catches a wake-up that got lost
    (e.g. a watch that broke between an event and its re-list). A minute bounds that delay while
    costing one reconcile per quiet run per minute. A run reconciled within the interval, or with a
    re-check still scheduled, is skipped. One loop for all runs (:mod:`.sweeping`: a Kopf timer per
    run made Kopf keep every run's whole body in memory), walking the runs index one run at a time.
    """
    loop = asyncio.get_running_loop()
    for (namespace, name), run in sweeping.runs(memo.indexes.runs):
        key = (namespace, name)
        timer = memo.timers.get(key)
        if not sweeping.unfinished(run) or (timer is not None and timer.when() > loop.time()):
            continue
        if loop.time() - memo.last_reconciled.get(key, float("-inf")) >= SAFETY_NET_SECONDS:
            await reconcile_run(memo, namespace=namespace, name=name)


def _count_active_runs(memo: ControllerMemo) -> None:
    """Set the runs_active gauge from the index: unfinished runs by phase (no phase yet counts as Pending)."""
    active: dict[str, int] = {}
    for store in list((memo.index or {}).values()):
        for summary in list(store):
            if summary.phase not in model.TERMINAL_PHASES:
                phase = summary.phase.value if summary.phase else model.Phase.PENDING.value
                active[phase] = active.get(phase, 0) + 1
    for phase in model.Phase:
        metrics.RUNS_ACTIVE.labels(phase=phase.value).set(active.get(phase.value, 0))


def _owning_run(memo: ControllerMemo, body: Mapping[str, Any], namespace: str) -> str | None:
    """The run of a Job (owner reference) or Pod (run label, mapped back through the index)."""
    direct = observing.run_name_of(body)
    if direct is None:
        return None
    for summary in lines.summaries(memo.index, namespace):
        if naming.label_value(summary.name) == direct:
            return summary.name
    return direct


def retry_delay(failures: int) -> float:
    """Seconds before the retry after ``failures`` raised reconciles in a row: 5, 10, 20 ... at most 300."""
    return float(min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** max(0, failures - 1)))


async def reconcile_run(memo: ControllerMemo, *, namespace: str, name: str, urgent: bool = False) -> None:
    """Reconcile one run now, serialised with any other reconcile of the same run.

    Events that arrive while a reconcile of the run is under way are coalesced into
    one more pass (it takes a new snapshot of the indexes), instead of queueing one pass each:
    a run's Job and Pod produce a burst of events per step, and under load the
    queue would otherwise grow with every event. Kopf's per-object workers do not
    do this for us: the Job and Pod events are about other objects than the run.

    A run whose reconcile raised waits for its retry (exponential, :func:`retry_delay`) unless
    ``urgent`` (its scheduled retry, its deletion).
    """
    key = (namespace, name)
    loop = asyncio.get_running_loop()
    if not urgent and loop.time() < memo.retry_at.get(key, 0.0):
        return
    if key in memo.running:
        memo.dirty.add(key)
        return
    memo.running.add(key)
    try:
        after: float | None = None
        while True:
            memo.dirty.discard(key)
            memo.last_reconciled[key] = loop.time()
            try:
                # Read on the loop, where Kopf changes its indexes; decide and apply in a worker thread.
                seen = memo.indexes.snapshot(namespace, name, naming.label_value(name))
                others = lines.summaries(memo.index)
                after = await asyncio.to_thread(_reconcile_blocking, memo, namespace, name, seen, others)
                metrics.RECONCILES.labels(result="ok").inc()
                memo.failures.pop(key, None)
                memo.retry_at.pop(key, None)
            except Exception:
                metrics.RECONCILES.labels(result="error").inc()
                memo.failures[key] = memo.failures.get(key, 0) + 1
                after = retry_delay(memo.failures[key])
                memo.retry_at[key] = loop.time() + after
                log.exception("reconcile of %s/%s failed; retrying in %.0fs", namespace, name, after)
                break
            if key not in memo.dirty:
                break
    finally:
        memo.running.discard(key)
    if after is not None:
        _schedule(memo, namespace, name, after)


def _reconcile_blocking(
    memo: ControllerMemo,
    namespace: str,
    name: str,
    seen: indexes.Snapshot | None = None,
    others: list[reconciler.RunSummary] | None = None,
) -> float | None:
    """Decide and apply from what was ``seen`` (the API is read only without indexes, or for a run not in
    them); return seconds until the next check (None: nothing to wait for)."""
    label = naming.label_value(name)
    body: Mapping[str, Any] | None = (
        seen.run if seen is not None and seen.run is not None else apiserver.get_run(namespace=namespace, name=name)
    )
    if body is None:
        return None
    meta = body["metadata"]
    jobs = seen.jobs if seen is not None else apiserver.list_run_jobs(namespace=namespace, run_name=label)
    if meta.get("deletionTimestamp"):
        return finalizing.finish_deletion(body, jobs, memo.settings)
    now = datetime.now(UTC)
    try:
        view = observing.run_view(body)
    except pydantic.ValidationError as exc:
        decision = reconciler.reject(
            status=model.parse_status(body.get("status")),
            generation=int(meta.get("generation") or 1),
            message=model.explain(exc),
            now=now,
        )
        memo.indexes.wrote(applying.apply(decision, body=body))
        return None
    if view.status.phase not in model.TERMINAL_PHASES:  # on before deciding, so the decision is from the run as stored
        marked = finalizing.set_finalizer(body, wanted=True, indexes=memo.indexes)
        body, view = (body, view) if marked is body else (marked, observing.run_view(marked))
    pods = seen.pods if seen is not None else apiserver.list_run_pods(namespace=namespace, run_name=label)
    # Write fence (issue #9): read the fenced workloads only while the fence is being raised.
    workloads = {
        reconciler.workload_key(kind, wname): apiserver.read_workload(namespace=namespace, kind=kind, name=wname)
        for kind, wname in observing.fence_to_read(view)
    }
    summary = observing.run_summary(body)
    blocked_by, position, capacity = None, None, None
    limit = memo.settings.reconcile.max_running_runs
    if summary is not None and summary.phase in (None, *lines.WAITING):
        others = others if others is not None else lines.summaries(memo.index)
        blocked_by, position = reconciler.find_blocker(
            name=name, database=summary.database, creation_timestamp=summary.creation_timestamp, others=others
        )
        if blocked_by is None and limit is not None:
            capacity = reconciler.measure_capacity(
                name=name,
                namespace=namespace,
                creation_timestamp=summary.creation_timestamp,
                others=others,
                limit=limit,
            )
    decision = reconciler.reconcile(
        run=view,
        observed=observing.observed(jobs, pods, workloads, run_uid=view.uid),
        now=now,
        settings=memo.settings,
        blocked_by=blocked_by,
        queue_position=position,
        capacity=capacity,
    )
    terminal = decision.status.phase in model.TERMINAL_PHASES
    try:
        patched = applying.apply(decision, body=body)
        memo.indexes.wrote(patched)
    except apiserver.Conflict:  # the run changed since the version decided on (a watch behind): decide again
        memo.indexes.wrote(apiserver.get_run(namespace=namespace, name=name))
        return 0.0
    except apiserver.JobRejected as exc:
        # The apiserver will refuse this Job every time (e.g. an invalid podTemplate value, an admission
        # policy), or a Job of its name belongs to someone else (apiserver.JobNotOwned): retrying forever would
        # hide it, so the run ends Failed and says why.
        decision = reconciler.reject(
            status=view.status,
            generation=view.generation,
            message=str(exc),
            now=now,
            reason=conditions.Reason.JOB_REJECTED,
        )
        patched = applying.apply(decision, body=body)
        memo.indexes.wrote(patched)
        finalizing.set_finalizer(patched or body, wanted=False, indexes=memo.indexes)
        return None
    if terminal:
        # Write fence (issue #9): the finalizer goes only once the scale-back and the final status are
        # stored, so a run deleted at that instant cannot leave its fence up.
        finalizing.set_finalizer(patched or body, wanted=False, indexes=memo.indexes)
        return None
    return decision.requeue_after or float(memo.settings.reconcile.poll_seconds)


def _schedule(memo: ControllerMemo, namespace: str, name: str, after: float) -> None:
    """Re-check the run in ``after`` seconds, replacing any earlier re-check of it."""
    key = (namespace, name)
    old = memo.timers.pop(key, None)
    if old is not None:
        old.cancel()
    loop = asyncio.get_running_loop()
    memo.timers[key] = loop.call_later(
        after, lambda: loop.create_task(reconcile_run(memo, namespace=namespace, name=name, urgent=True))
    )


def _forget(memo: ControllerMemo, namespace: str, name: str) -> None:
    timer = memo.timers.pop((namespace, name), None)
    if timer is not None:
        timer.cancel()
    memo.dirty.discard((namespace, name))
    memo.failures.pop((namespace, name), None)
    memo.retry_at.pop((namespace, name), None)
    memo.last_reconciled.pop((namespace, name), None)
    memo.indexes.forget((namespace, name))
