"""A tiny simulated world for reconciler tests: a run, its Jobs, a clock.

``World.tick()`` reconciles, then applies the Decision the way the handler
does (jobs created, status written through JSON like the API would), so tests
read as a sequence of events.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic_operator.api import model
from alembic_operator.api import termination as termination_message
from alembic_operator.api.model import MigrationRunSpec, MigrationRunStatus, Phase, RunView
from alembic_operator.controller.reconciler import (
    Capacity,
    CreateJob,
    Decision,
    JobCondition,
    JobObservation,
    Observed,
    PodObservation,
    ScaleWorkload,
    WorkloadObservation,
    reconcile,
)
from alembic_operator.controller.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
UID = "5f0c6f3e-8a61-4c1e-9d0a-1b2c3d4e5f60"
SETTINGS = Settings()

BASE_SPEC: dict[str, Any] = {
    "database": {"urlSecretRef": {"name": "shop-db"}},
    "migrate": {"image": "registry.example/shop:1.4.2"},
    "backup": {
        "s3": {
            "bucket": "backups",
            "prefix": "pg",
            "endpoint": "https://s3.local:9000",
            "forcePathStyle": True,
            "credentialsSecretRef": {"name": "s3-creds"},
        }
    },
}

BACKUP_DATA = {
    "uri": "s3://backups/pg/shop/x/dump.pgdump",
    "sizeBytes": 12_900_000,
    "sha256": "ab" * 32,
    "chunksSha256": "cd" * 32,
    "format": "custom",
    "durationSeconds": 3.5,
    "serverVersion": "15.8",
    "pgDumpVersion": "15.8",
    "revision": "a1",
    "tables": 4,
    "rows": 100,
    "manifestUri": "s3://backups/pg/shop/x/manifest.json",
}
MIGRATE_DATA = {"fromRevision": "a1", "toRevision": "b2", "applied": ["b2"]}
VERIFY_DATA = {"tablesChecked": 4, "violations": [], "revision": "b2"}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_spec(**over: Any) -> MigrationRunSpec:
    return model.parse_spec(merge(BASE_SPEC, over))


def make_run(
    spec: MigrationRunSpec | None = None,
    *,
    name: str = "shop-1-4-2",
    uid: str = UID,
    status: MigrationRunStatus | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
) -> RunView:
    return RunView(
        name=name,
        namespace="shop",
        uid=uid,
        spec=spec or make_spec(),
        status=status or MigrationRunStatus(),
        generation=generation,
        creation_timestamp=NOW,
        annotations=annotations or {},
    )


def termination(
    step: str,
    *,
    ok: bool,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
    changed: bool = False,
) -> str:
    return termination_message.encode(
        termination_message.build(
            step=step,
            ok=ok,
            message=message or f"{step} {'ok' if ok else 'failed'}",
            data=data,
            reason=reason,
            changed_database=changed,
        )
    )


def running(name: str, *, at: datetime = NOW) -> JobObservation:
    return JobObservation(name=name, active=1, start_time=at, pod=PodObservation(phase="Running", started_at=at))


def pending(name: str, *, reason: str | None = None, message: str | None = None) -> JobObservation:
    return JobObservation(
        name=name, active=1, pod=PodObservation(phase="Pending", waiting_reason=reason, waiting_message=message)
    )


def succeeded(
    name: str, step: str, data: dict[str, Any] | None = None, *, message: str | None = None
) -> JobObservation:
    return JobObservation(
        name=name,
        succeeded=1,
        conditions=(JobCondition("Complete"),),
        pod=PodObservation(
            phase="Succeeded",
            exit_code=0,
            started_at=NOW,
            termination_message=termination(step, ok=True, data=data, message=message),
        ),
    )


def failed(
    name: str,
    step: str,
    *,
    reason: str = "StepFailed",
    message: str | None = None,
    changed: bool = False,
    data: dict[str, Any] | None = None,
    exit_code: int = 1,
    raw: str | None = None,
) -> JobObservation:
    text = (
        raw
        if raw is not None
        else termination(step, ok=False, data=data, reason=reason, message=message, changed=changed)
    )
    return JobObservation(
        name=name,
        failed=1,
        conditions=(JobCondition("Failed", reason="BackoffLimitExceeded"),),
        pod=PodObservation(
            phase="Failed", exit_code=exit_code, termination_reason="Error", started_at=NOW, termination_message=text
        ),
    )


class World:
    """A run plus its Jobs; ``tick`` reconciles and applies like the handler."""

    def __init__(
        self,
        spec: MigrationRunSpec | None = None,
        *,
        settings: Settings = SETTINGS,
        annotations: dict[str, str] | None = None,
    ) -> None:
        self.run = make_run(spec, annotations=annotations)
        self.jobs: dict[str, JobObservation] = {}
        #: Fenced workloads by "Kind/name"; ScaleWorkload actions change them (pods stop only on request).
        self.workloads: dict[str, WorkloadObservation] = {}
        self.now = NOW
        self.settings = settings
        self.decisions: list[Decision] = []

    # clock and annotations
    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def annotate(self, **annotations: str) -> None:
        self.run = dataclasses.replace(self.run, annotations={**self.run.annotations, **annotations})

    @property
    def status(self) -> MigrationRunStatus:
        return self.run.status

    @property
    def phase(self) -> Phase | None:
        return self.run.status.phase

    def job(self, step: str) -> str:
        ss = self.status.steps.get(step)
        assert ss is not None and ss.job, f"no {step} job recorded"
        return ss.job

    def decide(self, *, blocked_by: str | None = None, capacity: Capacity | None = None) -> Decision:
        """Reconcile without applying."""
        return reconcile(
            run=self.run,
            observed=Observed(jobs=dict(self.jobs), workloads=dict(self.workloads)),
            now=self.now,
            settings=self.settings,
            blocked_by=blocked_by,
            capacity=capacity,
        )

    def tick(self, *, blocked_by: str | None = None, create: bool = True, capacity: Capacity | None = None) -> Decision:
        decision = self.decide(blocked_by=blocked_by, capacity=capacity)
        if create:
            for action in decision.actions:
                if isinstance(action, CreateJob):
                    self.jobs.setdefault(action.name, running(action.name, at=self.now))
        for action in decision.actions:
            if isinstance(action, ScaleWorkload):
                key = f"{action.kind}/{action.name}"
                old = self.workloads.get(key, WorkloadObservation())
                if old.exists:  # scaling down leaves pods running until stop_pods(); scaling up starts them
                    grown = action.replicas if action.replicas > old.current else old.current
                    self.workloads[key] = dataclasses.replace(
                        old, replicas=action.replicas, current=grown, pods=max(old.pods, grown)
                    )
        for action in decision.deletes:  # Foreground deletion: the Job stays while its pods terminate
            job = self.jobs.get(action.name)
            if job is not None:
                self.jobs[action.name] = dataclasses.replace(
                    job, deleting=True, active=0, terminating=job.active + job.terminating
                )
        # Round-trip through JSON like the API server.
        status = model.parse_status(model.dump(decision.status))
        self.run = dataclasses.replace(self.run, status=status)
        self.decisions.append(decision)
        return decision

    def add_workload(self, key: str, replicas: int) -> None:
        self.workloads[key] = WorkloadObservation(replicas=replicas, current=replicas, pods=replicas)

    def stop_pods(self, key: str) -> None:
        """The workload's controller and kubelet caught up: only spec.replicas pods remain."""
        old = self.workloads[key]
        self.workloads[key] = dataclasses.replace(old, current=old.replicas, pods=old.replicas)

    def settle(self) -> None:
        """Let the garbage collector finish: Jobs being deleted disappear."""
        self.jobs = {name: job for name, job in self.jobs.items() if not job.deleting}

    def finish(self, step: str, ok: bool = True, **kwargs: Any) -> None:
        name = self.job(step)
        self.jobs[name] = (
            succeeded(name, step, kwargs.pop("data", None), **kwargs) if ok else failed(name, step, **kwargs)
        )

    def set_job(self, step: str, job: JobObservation) -> None:
        self.jobs[self.job(step)] = dataclasses.replace(job, name=self.job(step))

    def run_to(self, phase: Phase) -> None:
        """Drive a default run along the happy path until it reaches ``phase``."""
        order = [Phase.PLANNING, Phase.BACKING_UP, Phase.MIGRATING, Phase.VERIFYING, Phase.SUCCEEDED]
        data = {
            "plan": {"statements": 3, "destructive": []},
            "backup": BACKUP_DATA,
            "migrate": MIGRATE_DATA,
            "verify": VERIFY_DATA,
        }
        step_of = {
            Phase.PLANNING: "plan",
            Phase.BACKING_UP: "backup",
            Phase.MIGRATING: "migrate",
            Phase.VERIFYING: "verify",
        }
        self.tick()
        for _ in range(10):
            if self.phase == phase:
                return
            assert self.phase in order, self.phase
            step = step_of[self.phase]
            self.finish(step, data=data[step])
            self.tick()
        raise AssertionError(f"did not reach {phase}; at {self.phase}")


def condition(status: MigrationRunStatus, type: str) -> model.Condition:
    found = next((c for c in status.conditions if c.type == type), None)
    assert found is not None, f"no {type} condition in {[c.type for c in status.conditions]}"
    return found
