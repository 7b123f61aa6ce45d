"""What the reconciler reads besides the run: its step Jobs (with their newest Pod) and fenced workloads.

Built by :mod:`alembic_operator.controller.observing` from the dicts the API
returned; frozen, so a reconcile cannot change what it was shown.

Must not: call the API or decide anything (the phase modules decide).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from alembic_operator.api import text


@dataclasses.dataclass(frozen=True)
class PodObservation:
    """What the reconciler needs from a step's (newest) Pod; build with :meth:`from_manifest`."""

    phase: str | None = None  #: Pending, Running, Succeeded, Failed, Unknown
    reason: str | None = None  #: pod.status.reason, e.g. Evicted
    message: str | None = None  #: pod.status.message
    waiting_reason: str | None = None  #: ErrImagePull, ImagePullBackOff, CreateContainerConfigError...
    waiting_message: str | None = None
    exit_code: int | None = None  #: of the terminated step container
    termination_reason: str | None = None  #: Completed, Error, OOMKilled...
    termination_message: str | None = None  #: raw; the step's JSON result (see results.parse)
    started_at: datetime | None = None  #: when the container started running
    deleting: bool = False  #: metadata.deletionTimestamp is set (e.g. the Job controller killing it at its deadline)
    terminated_now: bool = False  #: the container's current state (not its last one) is terminated
    restart_policy: str | None = None  #: pod.spec.restartPolicy; the builders set Never

    @property
    def ended(self) -> bool:
        """The step container terminated for good and its termination message is final.

        restartPolicy Never and ``backoffLimit: 0`` make that Pod's end the Job's end, about a second
        before the Job controller marks the Job. Under Never a terminated container never runs again,
        so its terminated state is final as soon as the kubelet reports it: up to a second before the
        kubelet, after tearing down the Pod's sandbox, reports the Pod's phase as Succeeded or Failed.
        A Pod being deleted does not count: that is the Job controller (deadline) or a person ending
        it, and the Job's own condition says why.
        """
        if self.exit_code is None or self.deleting:
            return False
        return self.phase in ("Succeeded", "Failed") or (self.terminated_now and self.restart_policy == "Never")

    @property
    def outcome(self) -> str | None:
        """Succeeded or Failed once :attr:`ended`: the Pod's phase, or what its one container's exit code
        makes it (0: Succeeded) while the kubelet has not reported the phase yet."""
        if not self.ended:
            return None
        if self.phase in ("Succeeded", "Failed"):
            return self.phase
        return "Succeeded" if self.exit_code == 0 else "Failed"

    @classmethod
    def from_manifest(cls, pod: Mapping[str, Any]) -> PodObservation:
        """Read a Pod dict (as the API returns it)."""
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        container = next((c for c in statuses if c.get("name") == "step"), statuses[0] if statuses else {})
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
        running = state.get("running") or {}
        return cls(
            phase=status.get("phase"),
            reason=status.get("reason"),
            message=status.get("message"),
            waiting_reason=waiting.get("reason"),
            waiting_message=waiting.get("message"),
            exit_code=terminated.get("exitCode"),
            termination_reason=terminated.get("reason"),
            termination_message=terminated.get("message"),
            started_at=text.parse_timestamp(running.get("startedAt") or terminated.get("startedAt")),
            deleting=bool((pod.get("metadata") or {}).get("deletionTimestamp")),
            terminated_now="terminated" in state,
            restart_policy=(pod.get("spec") or {}).get("restartPolicy"),
        )


@dataclasses.dataclass(frozen=True)
class JobCondition:
    """A batch/v1 Job condition: Complete, Failed, FailureTarget, SuccessCriteriaMet..."""

    type: str
    status: str = "True"
    reason: str | None = None  #: DeadlineExceeded, BackoffLimitExceeded, PodFailurePolicy...
    message: str | None = None
    since: datetime | None = None  #: lastTransitionTime: when it became ``status``


@dataclasses.dataclass(frozen=True)
class JobObservation:
    """What the reconciler needs from a step Job; build with :meth:`from_manifests`."""

    name: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0  #: pods being deleted (a killed migrate may still hold connections)
    conditions: tuple[JobCondition, ...] = ()
    start_time: datetime | None = None
    completion_time: datetime | None = None  #: status.completionTime (a Job that succeeded)
    deleting: bool = False  #: metadata.deletionTimestamp is set
    pod: PodObservation | None = None  #: the newest pod of the Job, if any

    def condition(self, type: str) -> JobCondition | None:
        """The condition of ``type`` if it is True."""
        return next((c for c in self.conditions if c.type == type and c.status == "True"), None)

    @property
    def complete(self) -> bool:
        """The Job succeeded, or its Pod did (:attr:`PodObservation.ended`): the Job will be Complete."""
        return self.succeeded > 0 or self.condition("Complete") is not None or self._pod_ended("Succeeded")

    @property
    def failed_condition(self) -> JobCondition | None:
        return self.condition("Failed") or self.condition("FailureTarget")

    @property
    def has_failed(self) -> bool:
        """The Job failed, or its Pod did (:attr:`PodObservation.ended`): with no retries the Job will fail."""
        return self.failed > 0 or self.failed_condition is not None or self._pod_ended("Failed")

    def _pod_ended(self, phase: str) -> bool:
        return self.pod is not None and self.pod.outcome == phase

    @property
    def end_time(self) -> datetime | None:
        """When the Job controller marked the Job ended: its completionTime, else its failed condition's time."""
        failed = self.failed_condition
        return self.completion_time or (failed.since if failed is not None else None)

    @property
    def pod_behind(self) -> bool:
        """The Job's own status says it ended, but its Pod, as the Pods' watch delivered it, has not.

        The Jobs and the Pods come on two watch streams, and under load the Pods' lags: with 1,000 runs
        a Job was seen Complete 10 s before its Pod's terminated state, which carries the step's result.
        The Job controller marks a Job only after its Pod ended (restartPolicy Never, no retries), so
        that Pod's end is on its way, unless the Pod is gone or being deleted (a deadline kills it). A Pod
        whose phase ended without a container's end (evicted, rejected by the kubelet) is not waited for.
        """
        ended = self.condition("Complete") is not None or self.failed_condition is not None
        if not (ended or self.succeeded > 0 or self.failed > 0):
            return False
        pod = self.pod
        return pod is None or not (pod.ended or pod.deleting or pod.phase in ("Succeeded", "Failed"))

    @property
    def pods_alive(self) -> bool:
        """A pod may still run (terminating, active unless its pod :attr:`~PodObservation.ended`, or Running)."""
        if self.terminating > 0:
            return True
        if self.pod is not None and self.pod.ended:  # ``active`` lags the Pod by the Job controller's sync
            return False
        if self.active > 0:
            return True
        return self.pod is not None and self.pod.phase == "Running" and self.pod.exit_code is None

    @classmethod
    def from_manifests(cls, job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = ()) -> JobObservation:
        """Read a Job dict and its Pods' dicts (the newest pod is kept)."""
        meta = job.get("metadata") or {}
        status = job.get("status") or {}
        newest = max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", default=None)
        return cls(
            name=meta["name"],
            active=status.get("active") or 0,
            succeeded=status.get("succeeded") or 0,
            failed=status.get("failed") or 0,
            terminating=status.get("terminating") or 0,
            conditions=tuple(
                JobCondition(
                    type=c.get("type", ""),
                    status=c.get("status", ""),
                    reason=c.get("reason"),
                    message=c.get("message"),
                    since=text.parse_timestamp(c.get("lastTransitionTime")),
                )
                for c in status.get("conditions") or []
            ),
            start_time=text.parse_timestamp(status.get("startTime")),
            completion_time=text.parse_timestamp(status.get("completionTime")),
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
    def of(cls, *jobs: JobObservation, workloads: Mapping[str, WorkloadObservation] | None = None) -> Observed:
        return cls(jobs={j.name: j for j in jobs}, workloads=dict(workloads or {}))
