"""The heart of the operator, pure: (run, observed Jobs and Pods, now) → (new status, actions).

Must not: import kopf, kubernetes or adapters; read the clock; call the API.
(The one impurity: messages pass through :func:`redact.redact`, which also
masks secrets found in the process environment — the operator has none.) The handler (``handlers.py``) builds the inputs,
calls :func:`reconcile`, then applies the :class:`Decision`.

How the handler applies a Decision (the crash-safety contract):

1. Execute :class:`CreateJob` actions FIRST (409 AlreadyExists counts as
   success: Job names are deterministic per run uid, step and attempt), then
   :class:`DeleteJob` (propagation Foreground, 404 is fine), then patch
   ``status`` with ``decision.status`` (``model.dump``), then post the
   :class:`EmitEvent` actions, then schedule :class:`Requeue`.
   A crash after the create and before the patch is harmless: the next
   reconcile decides the same create, sees the Job in ``observed`` and
   adopts it without a new CreateJob. (The reverse order is also safe, only
   wasteful: a Job recorded but never created counts as vanished after
   ``ReconcileSettings.job_grace_seconds`` — repeatable steps get a new
   attempt, a migrate is treated as failed-with-unknown-changes.)
2. If a create fails (API error), raise so Kopf retries: the status was not
   patched, so the next reconcile decides the same create again.
3. Re-run on any change of the run, of its Jobs or Pods (label
   ``alembic-operator.dev/run``), and after ``Requeue.after_seconds``.

A handler sketch (the real one lives in ``handlers.py``)::

    spec = model.parse_spec(body["spec"])                 # on ValidationError: reconciler.reject(...)
    run = model.RunView(name=..., namespace=..., uid=..., generation=meta["generation"],
                        creation_timestamp=..., annotations=meta.get("annotations", {}),
                        spec=spec, status=model.parse_status(body.get("status")))
    jobs = {j["metadata"]["name"]: reconciler.JobObservation.from_manifests(j, pods_of(j))
            for j in list_jobs(label_selector=f"{constants.LABEL_RUN}={naming.label_value(run.name)}")}
    blocked_by, position = reconciler.find_blocker(name=run.name, database=naming.database_label(spec, ns),
                                                   creation_timestamp=..., others=index_of_runs)
    decision = reconciler.reconcile(run=run, observed=reconciler.Observed(jobs=jobs), now=utcnow(),
                                    settings=settings, blocked_by=blocked_by, queue_position=position)
    # apply in the order described above; status = model.dump(decision.status)

The flow (each arrow is one Job; failures in brackets)::

    Pending → [Queued] → Planning (unless plan.destructive: allow) → BackingUp → Migrating → Verifying → Succeeded
    plan blocked/failed, backup failed, migrate failed without changes  → Failed (nothing to restore)
    migrate failed with (possible) changes, verify failed               → RollingBack → RolledBack | RollbackFailed
                                                      (foreign writes, hold, not approved) → RollbackHeld → RollingBack
                                                      (rollback.onFailure: none) → Failed, backup URI in the message
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Literal, Mapping, Optional, Union

from alembic_operator.api import constants, redact, results
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api import conditions as conds
from alembic_operator.api.model import PHASE_RANK, TERMINAL_PHASES, BackupStatus, FenceStatus, ForeignWritesStatus, MigrationRunStatus, Phase, PlanStatus, QueueStatus, RowCountsStatus, RunView, StepStatus, TableWrites
from alembic_operator.controller.settings import Settings

__all__ = [
    "RunView", "PodObservation", "JobCondition", "JobObservation", "WorkloadObservation", "Observed", "RunSummary",
    "CreateJob", "DeleteJob", "ScaleWorkload", "EmitEvent", "Requeue", "Action", "Decision",
    "reconcile", "reject", "release", "find_blocker", "workload_key", "STEP_PHASE",
]

# --------------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class PodObservation:
    """What the reconciler needs from a step's (newest) Pod; build with :meth:`from_manifest`."""

    phase: Optional[str] = None  #: Pending, Running, Succeeded, Failed, Unknown
    reason: Optional[str] = None  #: pod.status.reason, e.g. Evicted
    message: Optional[str] = None  #: pod.status.message
    waiting_reason: Optional[str] = None  #: ErrImagePull, ImagePullBackOff, CreateContainerConfigError...
    waiting_message: Optional[str] = None
    exit_code: Optional[int] = None  #: of the terminated step container
    termination_reason: Optional[str] = None  #: Completed, Error, OOMKilled...
    termination_message: Optional[str] = None  #: raw; the step's JSON result (see results.parse)
    started_at: Optional[datetime] = None  #: when the container started running

    @classmethod
    def from_manifest(cls, pod: Mapping[str, Any]) -> "PodObservation":
        """Read a Pod dict (as the API returns it)."""
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        cs = next((c for c in statuses if c.get("name") == "step"), statuses[0] if statuses else {})
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
        running = state.get("running") or {}
        return cls(
            phase=status.get("phase"), reason=status.get("reason"), message=status.get("message"),
            waiting_reason=waiting.get("reason"), waiting_message=waiting.get("message"),
            exit_code=terminated.get("exitCode"), termination_reason=terminated.get("reason"),
            termination_message=terminated.get("message"),
            started_at=_time(running.get("startedAt") or terminated.get("startedAt")),
        )


@dataclasses.dataclass(frozen=True)
class JobCondition:
    """A batch/v1 Job condition: Complete, Failed, FailureTarget, SuccessCriteriaMet..."""

    type: str
    status: str = "True"
    reason: Optional[str] = None  #: DeadlineExceeded, BackoffLimitExceeded, PodFailurePolicy...
    message: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class JobObservation:
    """What the reconciler needs from a step Job; build with :meth:`from_manifests`."""

    name: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0  #: pods being deleted (a killed migrate may still hold connections)
    conditions: tuple[JobCondition, ...] = ()
    start_time: Optional[datetime] = None
    completion_time: Optional[datetime] = None
    deleting: bool = False  #: metadata.deletionTimestamp is set
    pod: Optional[PodObservation] = None  #: the newest pod of the Job, if any

    def condition(self, type: str) -> Optional[JobCondition]:
        return next((c for c in self.conditions if c.type == type and c.status == "True"), None)

    @property
    def complete(self) -> bool:
        return self.succeeded > 0 or self.condition("Complete") is not None

    @property
    def failed_condition(self) -> Optional[JobCondition]:
        return self.condition("Failed") or self.condition("FailureTarget")

    @property
    def has_failed(self) -> bool:
        return self.failed > 0 or self.failed_condition is not None

    @property
    def pods_alive(self) -> bool:
        """A pod may still run (active or terminating, or the newest pod is Running/Pending)."""
        if self.active > 0 or self.terminating > 0:
            return True
        return self.pod is not None and self.pod.phase in ("Running",) and self.pod.exit_code is None

    @classmethod
    def from_manifests(cls, job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = ()) -> "JobObservation":
        """Read a Job dict and its Pods' dicts (the newest pod is kept)."""
        meta = job.get("metadata") or {}
        status = job.get("status") or {}
        newest = max(pods, key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or ""), default=None)
        return cls(
            name=meta["name"], active=status.get("active") or 0, succeeded=status.get("succeeded") or 0,
            failed=status.get("failed") or 0, terminating=status.get("terminating") or 0,
            conditions=tuple(JobCondition(type=c.get("type", ""), status=c.get("status", ""),
                                          reason=c.get("reason"), message=c.get("message"))
                             for c in status.get("conditions") or []),
            start_time=_time(status.get("startTime")), completion_time=_time(status.get("completionTime")),
            deleting=bool(meta.get("deletionTimestamp")),
            pod=PodObservation.from_manifest(newest) if newest is not None else None,
        )


def workload_key(kind: str, name: str) -> str:
    """``Deployment/shop``: how fenced workloads are keyed in status.fence and :class:`Observed`."""
    return f"{kind}/{name}"


@dataclasses.dataclass(frozen=True)
class WorkloadObservation:
    """A fenced Deployment or StatefulSet, read through its scale subresource (the only access RBAC grants).

    ``pods`` counts the workload's pods that still run or terminate (listed by
    the scale's ``status.selector``): a pod being deleted may still write, so
    the fence is up only when both ``current`` and ``pods`` are zero.
    """

    exists: bool = True
    replicas: int = 0  #: spec.replicas (what we record and scale)
    current: int = 0  #: status.replicas (non-terminated pods, per the controller)
    pods: int = 0  #: pods matching the selector that are not finished, terminating ones included


@dataclasses.dataclass(frozen=True)
class Observed:
    """The run's Jobs as listed by label ``alembic-operator.dev/run``, keyed by Job name, and its fenced
    workloads keyed by :func:`workload_key` (read only while the fence is being raised)."""

    jobs: Mapping[str, JobObservation] = dataclasses.field(default_factory=dict)
    workloads: Mapping[str, WorkloadObservation] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, *jobs: JobObservation, workloads: Mapping[str, WorkloadObservation] | None = None) -> "Observed":
        return cls(jobs={j.name: j for j in jobs}, workloads=dict(workloads or {}))


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Another run, as :func:`find_blocker` needs it (from the handler's index of runs)."""

    name: str
    database: str  #: naming.database_label(spec, namespace)
    creation_timestamp: datetime
    phase: Optional[Phase] = None


def find_blocker(*, name: str, database: str, creation_timestamp: datetime,
                 others: Iterable[RunSummary]) -> tuple[Optional[str], Optional[int]]:
    """(blocked_by, position) of a not-yet-started run: runs go one at a time per database.

    A run waits for every unfinished run on the same database that has started
    (phase past Queued) or was created earlier (name breaks ties). ``blocked_by``
    is the first of them, ``position`` counts them (1 = next to start).
    """
    ahead = []
    for o in others:
        if o.name == name or o.database != database or o.phase in TERMINAL_PHASES:
            continue
        started = o.phase is not None and PHASE_RANK[o.phase] > PHASE_RANK[Phase.QUEUED]
        if started or (o.creation_timestamp, o.name) < (creation_timestamp, name):
            ahead.append((0 if started else 1, o.creation_timestamp, o.name))
    if not ahead:
        return None, None
    ahead.sort()
    return ahead[0][2], len(ahead)


# --------------------------------------------------------------------------- outputs


@dataclasses.dataclass(frozen=True)
class CreateJob:
    """Create this Job (409 AlreadyExists is success)."""

    step: str
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class DeleteJob:
    """Delete this Job and its pods (404 is fine); Foreground so the Job stays until its pods are gone."""

    name: str
    propagation_policy: Literal["Foreground", "Background"] = "Foreground"


@dataclasses.dataclass(frozen=True)
class ScaleWorkload:
    """Set a Deployment's or StatefulSet's replicas through its scale subresource (404 is fine).

    Applied before the status is written, like :class:`CreateJob`: scaling to
    a fixed number is idempotent, and the replicas to put back were written
    to ``status.fence`` by an earlier reconcile, before any scale-down.
    """

    kind: str
    name: str
    replicas: int


@dataclasses.dataclass(frozen=True)
class EmitEvent:
    """Post an Event on the run (reasons: conditions.EventReason)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Requeue:
    """Reconcile again after this many seconds even if nothing changes."""

    after_seconds: float


Action = Union[CreateJob, DeleteJob, ScaleWorkload, EmitEvent, Requeue]


@dataclasses.dataclass
class Decision:
    """The new status (write it whole) and the actions, in the order to apply them."""

    status: MigrationRunStatus
    actions: list[Action]

    @property
    def creates(self) -> list[CreateJob]:
        return [a for a in self.actions if isinstance(a, CreateJob)]

    @property
    def deletes(self) -> list[DeleteJob]:
        return [a for a in self.actions if isinstance(a, DeleteJob)]

    @property
    def scales(self) -> list[ScaleWorkload]:
        return [a for a in self.actions if isinstance(a, ScaleWorkload)]

    @property
    def events(self) -> list[EmitEvent]:
        return [a for a in self.actions if isinstance(a, EmitEvent)]

    @property
    def requeue_after(self) -> Optional[float]:
        times = [a.after_seconds for a in self.actions if isinstance(a, Requeue)]
        return min(times) if times else None


# --------------------------------------------------------------------------- tables

STEP_PHASE = {"plan": Phase.PLANNING, "backup": Phase.BACKING_UP, "migrate": Phase.MIGRATING,
              "verify": Phase.VERIFYING, "restore": Phase.ROLLING_BACK}
_REPEATABLE = {"plan", "backup", "verify", "restore"}
#: Waiting reasons that will not fix themselves: fail the step at once.
_FAIL_FAST_WAITING = {"CreateContainerConfigError", "InvalidImageName", "ErrImageNeverPull"}
_STEP_NOUN = {"plan": "plan", "backup": "backup", "migrate": "migration", "verify": "verification",
              "restore": "restore"}


def _time(value: Any) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _one_line(text: Optional[str], limit: int = 400) -> str:
    text = " ".join((text or "").split())
    text = redact.redact(text) if text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclasses.dataclass
class _Outcome:
    ok: bool
    reason: str
    message: str
    exit_code: Optional[int] = None
    result: Optional[dict[str, Any]] = None
    #: Whether the database may have changed: True/False from the step's result, None if unknown.
    changed: Optional[bool] = None
    delete_job: bool = False

    @property
    def data(self) -> dict[str, Any]:
        return dict((self.result or {}).get("data") or {})


# --------------------------------------------------------------------------- the reconciler


def reconcile(*, run: RunView, observed: Observed, now: datetime, settings: Settings | None = None,
              blocked_by: Optional[str] = None, queue_position: Optional[int] = None) -> Decision:
    """Decide the run's next status and actions from what is observed; see the module docstring.

    ``blocked_by`` names an unfinished run on the same database that goes first
    (:func:`find_blocker`); it only matters before the run starts.
    Idempotent: reconciling the returned status with the same observations
    yields the same status, no CreateJob and no EmitEvent.
    """
    return _Reconciler(run=run, observed=observed, now=now, settings=settings or Settings(),
                       blocked_by=blocked_by, queue_position=queue_position).run()


def reject(*, status: MigrationRunStatus, generation: int, message: str, now: datetime) -> Decision:
    """The Decision for a run whose spec cannot be parsed: Failed, Stalled/InvalidSpec, a Warning Event.

    ``message`` should come from :func:`model.explain`. Nothing is created.
    """
    now = now.replace(microsecond=0)
    st = status.model_copy(deep=True)
    if st.phase in TERMINAL_PHASES:
        return Decision(status=st, actions=[])
    st.phase = Phase.FAILED
    st.observed_generation = generation
    st.message = f"invalid spec: {message}"
    st.started_at = st.started_at or now
    st.finished_at = now
    st.conditions = conds.kstatus_conditions(st.conditions, phase=Phase.FAILED, reason=Reason.INVALID_SPEC,
                                             message=st.message, generation=generation, now=now)
    actions: list[Action] = [*_lift(st, now), EmitEvent("Warning", Reason.INVALID_SPEC, st.message)]
    return Decision(status=st, actions=actions)


class _Reconciler:
    """One reconcile: mutable working copy of the status plus the actions collected."""

    def __init__(self, *, run: RunView, observed: Observed, now: datetime, settings: Settings,
                 blocked_by: Optional[str], queue_position: Optional[int]) -> None:
        self.run_view = run
        self.spec = run.spec
        self.observed = observed
        self.now = now.astimezone(timezone.utc).replace(microsecond=0) if now.tzinfo else \
            now.replace(microsecond=0, tzinfo=timezone.utc)
        self.settings = settings
        self.blocked_by = blocked_by
        self.queue_position = queue_position
        self.st = run.status.model_copy(deep=True)
        self.actions: list[Action] = []
        self.requeue: Optional[float] = None
        self.location = naming.location(spec=run.spec, namespace=run.namespace, run_name=run.name,
                                        run_uid=run.uid)
        #: Set when this reconcile recorded the fence's replicas: scaling waits until they are stored.
        self.fence_recorded_now = False

    # ---------------------------------------------------------------- driver

    def run(self) -> Decision:
        st = self.st
        gen = self.run_view.generation
        if st.phase is None:
            st.phase = Phase.PENDING
            st.started_at = self.now
            st.message = "accepted; waiting to start"
        st.observed_generation = gen
        st.target_revision = st.target_revision or self.spec.migrate.target
        st.location = st.location or self.location

        handlers = {
            Phase.PENDING: self._pending, Phase.QUEUED: self._pending,
            Phase.PLANNING: lambda: self._step("plan"), Phase.BACKING_UP: self._backing_up,
            Phase.MIGRATING: lambda: self._step("migrate"), Phase.VERIFYING: lambda: self._step("verify"),
            Phase.ROLLING_BACK: self._rolling_back, Phase.ROLLBACK_HELD: self._held,
        }
        if st.phase in TERMINAL_PHASES:
            self._lift_fence()  # safety net: a terminal run never keeps its write fence up
        for _ in range(12):  # each pass may move the phase forward; bounded for safety
            if st.phase in TERMINAL_PHASES:
                break
            before = st.phase
            handlers[st.phase]()
            if st.phase == before:
                break

        if st.phase in TERMINAL_PHASES:
            st.conditions = conds.restamp_generation(st.conditions, gen)
        elif st.phase == Phase.ROLLBACK_HELD:
            st.conditions = conds.kstatus_conditions(st.conditions, phase=st.phase, reason=Reason.ROLLBACK_HELD,
                                                     message=st.message or "", generation=gen, now=self.now)
        else:
            reason = Reason.QUEUED if st.phase == Phase.QUEUED else st.phase.value
            st.conditions = conds.kstatus_conditions(st.conditions, phase=st.phase, reason=reason,
                                                     message=st.message or "", generation=gen, now=self.now)
        st.conditions = conds.restamp_generation(st.conditions, gen)
        actions = list(self.actions)
        if self.requeue is not None and st.phase not in TERMINAL_PHASES:
            actions.append(Requeue(max(1.0, float(self.requeue))))
        return Decision(status=st, actions=actions)

    # ---------------------------------------------------------------- helpers

    def _event(self, type: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.actions.append(EmitEvent(type, reason, message))

    def _wake(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def _step_condition(self, step: str, status: conds.ConditionStatus, reason: str, message: str) -> None:
        self.st.conditions = conds.step_condition(self.st.conditions, step=step, status=status, reason=reason,
                                                  message=message, generation=self.run_view.generation,
                                                  now=self.now)

    def _end(self, phase: Phase, reason: str, message: str, *, event_reason: Optional[str] = None,
             event_type: Literal["Normal", "Warning"] = "Warning") -> None:
        st = self.st
        st.phase = phase
        st.message = message
        st.finished_at = self.now
        st.queue = None
        st.conditions = conds.kstatus_conditions(st.conditions, phase=phase, reason=reason, message=message,
                                                 generation=self.run_view.generation, now=self.now)
        if event_reason:
            self._event(event_type, event_reason, message)
        self._lift_fence()

    def _job_name(self, step: str, attempt: int) -> str:
        return naming.job_name(run_name=self.run_view.name, run_uid=self.run_view.uid, step=step, attempt=attempt)

    def _set_step(self, step: str, value: StepStatus) -> None:
        setattr(self.st.steps, step, value)

    def _backup_uri(self) -> str:
        return (self.st.backup.uri if self.st.backup and self.st.backup.uri else self.location)

    # ---------------------------------------------------------------- phases

    def _pending(self) -> None:
        st = self.st
        if self.blocked_by:
            if st.phase != Phase.QUEUED:
                self._event("Normal", EventReason.QUEUED,
                            f"waiting for run {self.blocked_by} on the same database to finish")
            st.phase = Phase.QUEUED
            st.queue = QueueStatus(blocked_by=self.blocked_by, position=self.queue_position)
            st.message = f"queued behind run {self.blocked_by} on the same database"
            self._wake(self.settings.reconcile.queued_poll_seconds)
            return
        st.queue = None
        if self.spec.plan.destructive == "allow":
            self._to_backup()
        else:
            self._start("plan")

    def _start(self, step: str, attempt: int = 1, *, expect_revision: Optional[str] = None) -> None:
        """Record the step's Job in status and create it (unless it already exists: adopt)."""
        st = self.st
        name = self._job_name(step, attempt)
        self._set_step(step, StepStatus(job=name, attempt=attempt, started_at=self.now))
        st.phase = STEP_PHASE[step]
        if name not in self.observed.jobs:
            manifest = job_builders.build_step_job(run=self.run_view, step=step, settings=self.settings,
                                                   attempt=attempt, expect_revision=expect_revision)
            self.actions.append(CreateJob(step=step, manifest=manifest))
        st.message = self._running_message(step, attempt)
        self._event("Normal", EventReason.STARTED[step], f"created Job {name}: {st.message}")
        self._step_condition(step, "Unknown", Reason.IN_PROGRESS, st.message)
        self._wake(self.settings.reconcile.poll_seconds)

    def _running_message(self, step: str, attempt: int) -> str:
        messages = {
            "plan": f"planning the upgrade to {self.spec.migrate.target} (destructive statements: "
                    f"{self.spec.plan.destructive})",
            "backup": f"backing the database up to {self.location}",
            "migrate": f"migrating to {self.spec.migrate.target}; backup at {self._backup_uri()}",
            "verify": "verifying row counts and revision against the backup",
            "restore": f"{self._cause()}; restoring the database from {self._backup_uri()}",
        }
        return messages[step] + (f" (attempt {attempt})" if attempt > 1 else "")

    def _step(self, step: str) -> None:
        """Follow the current step's Job; on its end, record the outcome and move on."""
        ss = self.st.steps.get(step)
        if ss is None or ss.job is None:  # status lost its record (should not happen): start afresh
            self._start(step, expect_revision=self.st.to_revision if step == "verify" else None)
            return
        if ss.outcome is not None:  # already ended (a transition was interrupted): replay it
            self._after(step, _Outcome(ok=ss.outcome == "Succeeded", reason=ss.reason or "",
                                       message=ss.message or "", exit_code=ss.exit_code))
            return
        # A newer attempt may exist (crash after creating it, before recording it): adopt it.
        for attempt in range(self.settings.reconcile.max_attempts, ss.attempt, -1):
            name = self._job_name(step, attempt)
            if name in self.observed.jobs:
                ss = StepStatus(job=name, attempt=attempt,
                                started_at=self.observed.jobs[name].start_time or self.now)
                self._set_step(step, ss)
                break
        job = self.observed.jobs.get(ss.job or "")
        outcome = self._vanished(step, ss) if job is None else self._evaluate(step, ss, job)
        if outcome is None:
            return
        ss = self.st.steps.get(step) or ss
        self._set_step(step, ss.model_copy(update=dict(
            finished_at=self.now, outcome="Succeeded" if outcome.ok else "Failed", exit_code=outcome.exit_code,
            reason=outcome.reason, message=outcome.message)))
        if outcome.delete_job and ss.job:
            self.actions.append(DeleteJob(ss.job))
        self._after(step, outcome)

    def _vanished(self, step: str, ss: StepStatus) -> Optional[_Outcome]:
        started = ss.started_at or self.now
        grace = self.settings.reconcile.job_grace_seconds
        waited = (self.now - started).total_seconds()
        if waited < grace:  # the informer may lag behind our own create
            self._wake(grace - waited)
            return None
        if step in _REPEATABLE and ss.attempt < self.settings.reconcile.max_attempts:
            self._event("Warning", EventReason.JOB_VANISHED,
                        f"the {step} Job {ss.job} vanished before it finished; starting attempt {ss.attempt + 1}")
            self._start(step, ss.attempt + 1,
                        expect_revision=self.st.to_revision if step == "verify" else None)
            return None
        if step == "migrate":
            return _Outcome(ok=False, reason=Reason.JOB_VANISHED, changed=None,
                            message=f"the migrate Job {ss.job} vanished before it finished, "
                                    "so the database may have changed")
        return _Outcome(ok=False, reason=Reason.JOB_VANISHED,
                        message=f"the {step} Job {ss.job} vanished {ss.attempt} times before it finished")

    def _evaluate(self, step: str, ss: StepStatus, job: JobObservation) -> Optional[_Outcome]:
        """The step's outcome from its Job and Pod, or None while it runs (then schedule a re-check)."""
        pod = job.pod
        timeout = self.spec.timeouts.for_step(step)
        result = results.parse(pod.termination_message) if pod else None
        exit_code = pod.exit_code if pod else None
        if job.complete:
            if result is not None:
                return _Outcome(ok=True, reason=Reason.STEP_SUCCEEDED, message=_one_line(result.get("message")),
                                exit_code=exit_code, result=result, changed=bool(result.get("changedDatabase")))
            return _Outcome(ok=True, reason=Reason.NO_RESULT, exit_code=exit_code,
                            message=f"the {step} step succeeded without a readable result")
        if job.has_failed:
            cond = job.failed_condition
            if cond is not None and cond.reason == "DeadlineExceeded":
                return _Outcome(ok=False, reason=Reason.DEADLINE_EXCEEDED, exit_code=exit_code, result=result,
                                message=f"the {step} step exceeded its deadline of {timeout}s")
            if pod is not None and pod.reason == "Evicted":
                return _Outcome(ok=False, reason=Reason.POD_EVICTED, exit_code=exit_code,
                                message=f"the {step} pod was evicted: {_one_line(pod.message)}".rstrip(": "))
            if result is not None:
                changed = result.get("changedDatabase")
                return _Outcome(ok=False, reason=_reason(result.get("reason")),
                                message=_one_line(result.get("message")) or f"the {step} step failed",
                                exit_code=exit_code, result=result,
                                changed=changed if isinstance(changed, bool) else None)
            return _Outcome(ok=False, reason=Reason.STEP_FAILED, exit_code=exit_code,
                            message=self._raw_failure(step, job, pod))
        # Still running, or never started.
        if pod is not None and pod.reason == "Evicted":
            return _Outcome(ok=False, reason=Reason.POD_EVICTED, delete_job=True,
                            message=f"the {step} pod was evicted: {_one_line(pod.message)}".rstrip(": "))
        if pod is not None and pod.waiting_reason in _FAIL_FAST_WAITING:
            return _Outcome(ok=False, reason=Reason.POD_CONFIG_ERROR, delete_job=True, changed=False,
                            message=f"the {step} pod cannot start: {pod.waiting_reason}: "
                                    f"{_one_line(pod.waiting_message)}".rstrip(": "))
        elapsed = (self.now - (ss.started_at or self.now)).total_seconds()
        not_started = pod is None or (pod.started_at is None and pod.phase in (None, "Pending"))
        pending_limit = self.spec.timeouts.pending_seconds
        if not_started and elapsed > pending_limit:
            why = f"{pod.waiting_reason}: {_one_line(pod.waiting_message)}" if pod and pod.waiting_reason \
                else "no pod started"
            return _Outcome(ok=False, reason=Reason.POD_NOT_STARTED, delete_job=True, changed=False,
                            message=f"the {step} pod did not start within {pending_limit}s: {why}".rstrip(": "))
        backstop = timeout + self.settings.jobs.deadline_slack_seconds
        if elapsed > backstop:
            return _Outcome(ok=False, reason=Reason.DEADLINE_EXCEEDED, delete_job=True,
                            message=f"the {step} step exceeded its deadline of {timeout}s")
        if not_started and pod is not None and pod.waiting_reason:
            self.st.message = (f"the {step} pod is not running yet: {pod.waiting_reason}: "
                               f"{_one_line(pod.waiting_message, 200)}").rstrip(": ")
            self._wake(min(self.settings.reconcile.poll_seconds, max(1.0, pending_limit - elapsed + 1)))
        else:
            self.st.message = self._running_message(step, ss.attempt)
            self._wake(min(self.settings.reconcile.poll_seconds, max(1.0, backstop - elapsed + 1)))
        return None

    @staticmethod
    def _raw_failure(step: str, job: JobObservation, pod: Optional[PodObservation]) -> str:
        if pod is None:
            cond = job.failed_condition
            detail = f": {cond.reason}" if cond and cond.reason else ""
            return f"the {step} Job failed{detail}"
        parts = [f"the {step} container exited with code {pod.exit_code}" if pod.exit_code is not None
                 else f"the {step} pod failed"]
        if pod.termination_reason and pod.termination_reason not in ("Error", "Completed"):
            parts.append(f"({pod.termination_reason})")
        text = " ".join(parts)
        tail = _one_line(pod.termination_message, 300)
        return f"{text}: {tail}" if tail else text

    # ---------------------------------------------------------------- transitions

    def _after(self, step: str, o: _Outcome) -> None:
        noun = _STEP_NOUN[step]
        if o.ok:
            self._event("Normal", EventReason.SUCCEEDED[step], f"the {noun} succeeded: {o.message}")
        elif o.reason != Reason.FOREIGN_WRITES_DETECTED:  # not a failure: the RollbackHeld event tells it
            self._event("Warning", EventReason.FAILED[step], f"the {noun} failed: {o.message}")
        getattr(self, f"_after_{step}")(o)

    def _after_plan(self, o: _Outcome) -> None:
        data = o.data
        destructive = [_describe_statement(s) for s in data.get("destructive") or []]
        if data.get("fromRevision") is not None:  # the backup and migrate steps confirm it later
            self.st.from_revision = str(data["fromRevision"])
        if data or destructive:
            statements = data.get("statements")
            self.st.plan = PlanStatus(statements=statements if isinstance(statements, int) else None,
                                      destructive=destructive)
        policy = self.spec.plan.destructive
        if not o.ok or (destructive and policy == "block"):
            if o.reason == "DestructiveChange" or (o.ok and destructive):
                listed = "; ".join(destructive) if destructive else o.message
                msg = f"blocked by destructive statements: {_one_line(listed, 600)}; nothing was changed"
                self._step_condition("plan", "False", Reason.DESTRUCTIVE_CHANGE_BLOCKED, msg)
                self._end(Phase.FAILED, Reason.DESTRUCTIVE_CHANGE_BLOCKED, msg)
            else:
                msg = f"plan failed: {o.message}; the database is unchanged"
                self._step_condition("plan", "False", o.reason or Reason.STEP_FAILED, msg)
                self._end(Phase.FAILED, Reason.FAILED, msg)
            return
        if destructive:
            msg = f"the plan has {len(destructive)} destructive statement(s): {_one_line('; '.join(destructive), 600)}"
            self._event("Warning", EventReason.DESTRUCTIVE_CHANGES, msg)
            self._step_condition("plan", "True", Reason.DESTRUCTIVE_CHANGES_WARNED, msg)
        else:
            self._step_condition("plan", "True", Reason.STEP_SUCCEEDED, o.message)
        self._to_backup()

    def _after_backup(self, o: _Outcome) -> None:
        data = o.data
        if o.ok:
            size = data.get("sizeBytes")
            self.st.backup = BackupStatus(
                uri=data.get("uri"), size_bytes=size if isinstance(size, int) else None,
                size=naming.human_size(size) if isinstance(size, int) else None, sha256=data.get("sha256"),
                format=data.get("format") or self.spec.backup.format, duration_seconds=data.get("durationSeconds"),
                server_version=_str(data.get("serverVersion")), pg_dump_version=_str(data.get("pgDumpVersion")),
                manifest_uri=data.get("manifestUri"))
            revision = data.get("revision", data.get("fromRevision"))
            if revision is not None:
                self.st.from_revision = str(revision)
            if not (self.st.backup.uri and self.st.backup.size_bytes is not None and self.st.backup.sha256):
                # Safety rule 2: no migration without a complete, recorded backup.
                o = dataclasses.replace(o, ok=False, reason=Reason.NO_RESULT,
                                        message="the backup reported success without its URI, size and SHA-256")
        if not o.ok:
            msg = f"backup failed: {o.message}; the database is unchanged"
            self._step_condition("backup", "False", o.reason or Reason.STEP_FAILED, msg)
            self._end(Phase.FAILED, Reason.BACKUP_FAILED, msg)
            return
        self._step_condition("backup", "True", Reason.STEP_SUCCEEDED,
                             f"backed up {self.st.backup.size} to {self.st.backup.uri}")  # type: ignore[union-attr]
        self._start("migrate")

    def _after_migrate(self, o: _Outcome) -> None:
        data = o.data
        for key, attr in (("fromRevision", "from_revision"), ("toRevision", "to_revision")):
            if data.get(key) is not None:
                setattr(self.st, attr, str(data[key]))
        if o.ok:
            self._step_condition("migrate", "True", Reason.STEP_SUCCEEDED, o.message)
            self._start("verify", expect_revision=self.st.to_revision)
            return
        cause = f"migration failed: {o.message}"
        if o.changed is False:
            msg = f"{cause}; no changes were committed, so no restore is needed"
            self._step_condition("migrate", "False", o.reason or Reason.STEP_FAILED, msg)
            self._end(Phase.FAILED, Reason.MIGRATION_FAILED, msg)
            return
        self._step_condition("migrate", "False", o.reason or Reason.STEP_FAILED, cause)
        self._begin_rollback(cause)

    def _after_verify(self, o: _Outcome) -> None:
        data = o.data
        rc = data.get("rowCounts") if isinstance(data.get("rowCounts"), dict) else data
        if any(k in rc for k in ("tables", "tablesChecked", "rowsBefore", "rowsAfter", "violations")):
            self.st.row_counts = RowCountsStatus(
                tables=_int(rc.get("tablesChecked", rc.get("tables"))), rows_before=_int(rc.get("rowsBefore")),
                rows_after=_int(rc.get("rowsAfter")),
                violations=[_describe_violation(v) for v in rc.get("violations") or []])
        if data.get("revision") is not None and self.st.to_revision is None:
            self.st.to_revision = str(data["revision"])
        if o.ok:
            self._step_condition("verify", "True", Reason.STEP_SUCCEEDED, o.message)
            tables = self.st.row_counts.tables if self.st.row_counts else None
            what = f"{tables} tables" if tables is not None else "the database"
            msg = (f"migrated {self.st.from_revision or '(base)'} → {self.st.to_revision or self.st.target_revision} "
                   f"and verified {what}; backup at {self._backup_uri()}")
            self._end(Phase.SUCCEEDED, Reason.SUCCEEDED, msg, event_reason=EventReason.RUN_SUCCEEDED,
                      event_type="Normal")
            return
        cause = f"verification failed: {o.message}"
        self._step_condition("verify", "False", o.reason or Reason.STEP_FAILED, cause)
        self._begin_rollback(cause)

    def _after_restore(self, o: _Outcome) -> None:
        cause = self._cause()
        uri = self._backup_uri()
        if not o.ok and o.reason == Reason.FOREIGN_WRITES_DETECTED:
            # The restore's preflight found other sessions' writes and changed nothing: decide here.
            found = _foreign_writes(o.data, self.now)
            if found is not None:
                self.st.foreign_writes = found
            elif self.st.foreign_writes is None:
                self.st.foreign_writes = ForeignWritesStatus(checked_at=self.now)
            self._step_condition("restore", "False", Reason.FOREIGN_WRITES_DETECTED, o.message)
            self._rolling_back()  # holds, unless approved meanwhile: then the next attempt starts
            return
        if o.ok:
            msg = f"{cause}; the database was restored from {uri}"
            discarded = _foreign_writes(o.data, self.now)
            if discarded is not None and discarded.rows > 0:
                discarded.discarded = True
                self.st.foreign_writes = discarded
                lost = (f"the restore discarded ~{discarded.rows} rows other sessions wrote since the backup "
                        f"({discarded.summary()}); they are in the statistics at "
                        f"{discarded.stats_uri or self.location}")
                msg = f"{msg}; {lost}"
                self._event("Warning", EventReason.FOREIGN_WRITES_DISCARDED, lost)
            elif self.st.foreign_writes is not None:
                self.st.foreign_writes.discarded = True
            self._step_condition("restore", "True", Reason.STEP_SUCCEEDED, o.message)
            self._end(Phase.ROLLED_BACK, Reason.ROLLED_BACK, msg)
            return
        attempt = self.st.steps.restore.attempt if self.st.steps.restore else 1
        if o.changed is False and _transient_restore_failure(o.reason, o.message) \
                and attempt < self.settings.reconcile.max_attempts:
            wait = _RESTORE_RETRY_SECONDS * attempt
            msg = (f"{cause}; restore attempt {attempt} failed without changing the database ({o.message}); "
                   f"retrying in {wait}s")
            self._step_condition("restore", "False", o.reason or Reason.STEP_FAILED, msg)
            self.st.message = msg
            self._wake(wait)
            return
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        msg = (f"{cause}, and the restore failed too{tries}: {o.message}; the database needs a person: "
               f"restore it from {uri} (alembic-operator restore --location {self.location})")
        self._step_condition("restore", "False", o.reason or Reason.STEP_FAILED, msg)
        self._end(Phase.ROLLBACK_FAILED, Reason.ROLLBACK_FAILED, msg)

    def _retrying_restore(self, ss: StepStatus) -> bool:
        """A restore attempt that failed transiently and changed nothing: start the next one after a pause.

        The restore is atomic and checks the dump first, so a new attempt is safe;
        it re-checks foreign writes itself. True while waiting or when it started one.
        """
        if not (ss.outcome == "Failed" and _transient_restore_failure(ss.reason, ss.message)
                and ss.attempt < self.settings.reconcile.max_attempts):
            return False
        wait = _RESTORE_RETRY_SECONDS * ss.attempt
        waited = (self.now - (ss.finished_at or self.now)).total_seconds()
        if waited < wait:
            self._wake(wait - waited)
            return True
        self._start("restore", ss.attempt + 1)
        return True

    # ---------------------------------------------------------------- write fence

    def _to_backup(self) -> None:
        """Move to BackingUp; the backup Job starts once the write fence (if any) is up."""
        self.st.phase = Phase.BACKING_UP
        if self._fence_targets():
            self.st.message = "raising the write fence before the backup"

    def _backing_up(self) -> None:
        if self.st.steps.backup is None and not self._fence_ready():
            return
        self._step("backup")

    def _fence_targets(self) -> list[str]:
        fence = self.spec.write_fence
        return [workload_key(t.kind, t.name) for t in fence.scale_down] if fence else []

    def _fence_ready(self) -> bool:
        """Raise the write fence one safe move per reconcile; True once no pod of a fenced workload is left.

        1. Record every workload's replicas in status.fence (no scaling yet:
           the record must be stored before anything is scaled, so a restarted
           operator can always put them back).
        2. Next reconcile: scale each to zero (ScaleWorkload, repeated while
           spec.replicas is not zero).
        3. Wait until neither the controller nor the pod list shows a pod; past
           ``writeFence.timeoutSeconds`` the run fails and the fence is lifted.
        """
        targets = self._fence_targets()
        if not targets:
            return True
        st = self.st
        seen = self.observed.workloads
        if st.fence is None:
            unread = [k for k in targets if k not in seen]
            if unread:
                st.message = f"write fence: reading {', '.join(unread)}"
                self._wake(2)
                return False
            missing = [k for k in targets if not seen[k].exists]
            if missing:
                self._end(Phase.FAILED, Reason.WRITE_FENCE_FAILED,
                          f"write fence: {', '.join(missing)} not found in namespace {self.run_view.namespace}; "
                          "nothing was changed", event_reason=EventReason.WRITE_FENCE_FAILED)
                return False
            st.fence = FenceStatus(replicas={k: seen[k].replicas for k in targets}, state="Raising",
                                   raised_at=self.now)
            self.fence_recorded_now = True
            st.message = f"write fence: recorded {_describe_replicas(st.fence.replicas)}; scaling to zero"
            self._wake(1)
            return False
        fence = st.fence
        if fence.state != "Raising":
            return True
        if self.fence_recorded_now:
            self._wake(1)
            return False
        waiting = []
        for key in fence.replicas:
            obs = seen.get(key)
            if obs is None:
                waiting.append(key)
            elif not obs.exists:
                continue
            elif obs.replicas != 0:
                kind, name = key.split("/", 1)
                self.actions.append(ScaleWorkload(kind=kind, name=name, replicas=0))
                waiting.append(key)
            elif obs.current or obs.pods:
                waiting.append(key)
        if not waiting:
            fence.state = "Up"
            self._event("Normal", EventReason.WRITE_FENCE_RAISED,
                        f"scaled {', '.join(fence.replicas)} to zero and no pod of them is left; backing up")
            return True
        timeout = self.spec.write_fence.timeout_seconds if self.spec.write_fence else 300
        if fence.raised_at is not None and (self.now - fence.raised_at).total_seconds() > timeout:
            self._end(Phase.FAILED, Reason.WRITE_FENCE_FAILED,
                      f"write fence: the pods of {', '.join(waiting)} did not stop within {timeout}s; "
                      "nothing was changed", event_reason=EventReason.WRITE_FENCE_FAILED)
            return False
        st.message = f"write fence: waiting for the pods of {', '.join(waiting)} to stop before the backup"
        self._wake(1)
        return False

    def _lift_fence(self) -> None:
        """Scale fenced workloads back to their recorded replicas (every end of a run comes through here)."""
        actions = _lift(self.st, self.now)
        if actions:
            self.actions.extend(actions)
            self._event("Normal", EventReason.WRITE_FENCE_LIFTED,
                        f"scaled {_describe_replicas(self.st.fence.replicas)} back"  # type: ignore[union-attr]
                        f" ({self.st.phase.value if self.st.phase else 'ended'})")

    # ---------------------------------------------------------------- rollback

    def _cause(self) -> str:
        verify = self.st.steps.verify
        if verify is not None and verify.outcome == "Failed":
            return f"verification failed: {verify.message}"
        migrate = self.st.steps.migrate
        return f"migration failed: {migrate.message if migrate else 'unknown'}"

    def _hold(self) -> bool:
        """Whether a due restore must wait: it would discard other sessions' writes and nobody said yes."""
        fw = self.st.foreign_writes
        return (fw is not None and not fw.discarded and self.spec.rollback.on_foreign_writes == "hold"
                and not job_builders.restore_approved(run=self.run_view))

    def _held_message(self) -> str:
        fw = self.st.foreign_writes
        what = (f"other sessions wrote ~{fw.rows} rows since the backup ({fw.summary()})"
                if fw is not None and fw.tables else "other sessions wrote since the backup")
        if fw is not None and not fw.own_writes_known:
            what += " (the migration's own writes could not be told apart and are included)"
        return (f"{self._cause()}; {what}, which a restore would discard: annotate the run "
                f"{constants.ANNOTATION_APPROVE_RESTORE}=true to restore from {self._backup_uri()} anyway, "
                f"or delete the run to leave the database as it is")

    def _begin_rollback(self, cause: str) -> None:
        if self.spec.rollback.on_failure == "none":
            msg = (f"{cause}; the database may be partially migrated and rollback.onFailure is none: "
                   f"restore from {self._backup_uri()} by hand (alembic-operator restore --location {self.location})")
            self._end(Phase.FAILED, Reason.PARTIALLY_MIGRATED, msg, event_reason=EventReason.ROLLBACK_SKIPPED)
            return
        self.st.phase = Phase.ROLLING_BACK
        self.st.message = f"{cause}; restoring from {self._backup_uri()}"

    def _rolling_back(self) -> None:
        st = self.st
        previous = st.steps.restore
        if previous is not None and self._retrying_restore(previous):
            return
        if previous is not None and not _refused(previous):
            self._step("restore")
            return
        if self._hold():
            st.phase = Phase.ROLLBACK_HELD
            st.message = self._held_message()
            self._event("Warning", EventReason.ROLLBACK_HELD, st.message)
            self._wake(self.settings.reconcile.held_poll_seconds)
            return
        migrate = st.steps.migrate
        job = self.observed.jobs.get(migrate.job) if migrate and migrate.job else None
        if job is not None and job.pods_alive:
            # A killed migration may still hold connections and locks: restore only once its pod is gone.
            st.message = f"{self._cause()}; waiting for the migrate pod to stop before restoring"
            self._wake(5)
            return
        # After a refusal (foreign writes) that was approved, the next attempt restores regardless.
        self._start("restore", previous.attempt + 1 if previous is not None else 1)

    def _held(self) -> None:
        if self._hold():
            self.st.message = self._held_message()
            self._wake(self.settings.reconcile.held_poll_seconds)
            return
        self._event("Normal", EventReason.ROLLBACK_APPROVED, "the held restore was approved; restoring")
        self.st.phase = Phase.ROLLING_BACK


def release(*, status: MigrationRunStatus, now: datetime) -> Decision:
    """What to do before a deleted run is let go: lift its write fence. The database is left as it is.

    The handler calls this once no step Job of the run is active any more,
    applies it, and only then removes the finalizer.
    """
    st = status.model_copy(deep=True)
    now = now.astimezone(timezone.utc).replace(microsecond=0) if now.tzinfo else \
        now.replace(microsecond=0, tzinfo=timezone.utc)
    actions: list[Action] = list(_lift(st, now))
    if actions:
        actions.append(EmitEvent("Normal", EventReason.WRITE_FENCE_LIFTED,
                                 f"the run was deleted: scaled {_describe_replicas(st.fence.replicas)} back; "  # type: ignore[union-attr]
                                 "the database was left as it is"))
    return Decision(status=st, actions=actions)


def _lift(st: MigrationRunStatus, now: datetime) -> list[Action]:
    """ScaleWorkload back to every recorded replica count, marking the fence Lifted (in ``st``)."""
    fence = st.fence
    if fence is None or fence.state == "Lifted":
        return []
    actions: list[Action] = []
    for key, replicas in sorted(fence.replicas.items()):
        kind, name = key.split("/", 1)
        actions.append(ScaleWorkload(kind=kind, name=name, replicas=replicas))
    fence.state = "Lifted"
    fence.lifted_at = now
    return actions


def _describe_replicas(replicas: Mapping[str, int]) -> str:
    """``Deployment/shop (3 replicas), StatefulSet/worker (1 replica)``."""
    return ", ".join(f"{k} ({n} replica{'s' if n != 1 else ''})" for k, n in sorted(replicas.items()))


#: Seconds before restore attempt N+1 is N times this (PostgreSQL or S3 back after a restart).
_RESTORE_RETRY_SECONDS = 5
#: Restore failures that leave the database unchanged and may pass on a new attempt: the server or
#: S3 was away (preflight, download) or the restore's transaction was rolled back (connection lost).
_TRANSIENT_RESTORE_REASONS = {"DatabaseUnreachable", "StorageError"}


def _transient_restore_failure(reason: Optional[str], message: Optional[str]) -> bool:
    """Whether a restore failure is worth another attempt (not a checksum mismatch, not a hold)."""
    if reason in _TRANSIENT_RESTORE_REASONS:
        return True
    # loading.rolled_back: "restore rolled back, the database is unchanged: <server error>"
    return reason == "RestoreFailed" and "rolled back, the database is unchanged" in (message or "")


def _refused(ss: StepStatus) -> bool:
    """A restore attempt that stopped in its preflight because of foreign writes (nothing was changed)."""
    return ss.outcome == "Failed" and ss.reason == Reason.FOREIGN_WRITES_DETECTED


def _foreign_writes(data: Mapping[str, Any], now: datetime) -> Optional[ForeignWritesStatus]:
    """status.foreignWrites from a restore result's ``data.foreignWrites``; None when absent or malformed."""
    raw = data.get("foreignWrites")
    if not isinstance(raw, dict):
        return None
    try:
        tables = [TableWrites.model_validate(t) for t in raw.get("tables") or [] if isinstance(t, dict)]
        tables.sort(key=lambda t: (-t.rows, t.table))
        rows = raw.get("rows")
        return ForeignWritesStatus(
            tables=tables[:20], rows=rows if isinstance(rows, int) and rows >= 0 else sum(t.rows for t in tables),
            own_writes_known=bool(raw.get("ownWritesKnown", True)), checked_at=now,
            stats_uri=_str(raw.get("statsUri")))
    except ValueError:  # pydantic.ValidationError is a ValueError
        return None


def _reason(value: Any) -> str:
    """A step's reason if it is a valid condition reason (CamelCase), else StepFailed."""
    text = str(value or "")
    return text if re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", text) and len(text) < 128 \
        else Reason.STEP_FAILED


def _describe_statement(item: Any) -> str:
    """A plan finding ({revision, kind, statement}) as one short line."""
    if isinstance(item, dict):
        statement = " ".join(str(item.get("statement") or "").split())[:160]
        head = " ".join(str(item[k]) for k in ("revision", "kind") if item.get(k))
        return f"{head}: {statement}" if head else statement
    return str(item)


def _describe_violation(item: Any) -> str:
    """A row-count violation ({table, before, after}) as one short line."""
    if isinstance(item, dict):
        return f"{item.get('table')}: {item.get('before')} → {item.get('after')} rows"
    return str(item)


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
