"""How a step's Job ended, read from the Job, its newest Pod and the step's result: an :class:`Outcome`.

:func:`evaluate` answers None while the step runs (and keeps status.message
current and a re-check scheduled); once it ended, the Outcome says whether it
succeeded, why, and whether the database may have changed.

Must not: move the run to another phase (the step's own module does that with the Outcome).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, TypeVar

from alembic_operator.api import results
from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import StepStatus
from alembic_operator.api.steps import Step, result_of
from alembic_operator.controller.reconciler.context import quote
from alembic_operator.controller.reconciler.inputs import JobObservation, PodObservation

if TYPE_CHECKING:
    from alembic_operator.controller.reconciler.context import Context

#: Waiting reasons that will not fix themselves: fail the step at once.
FAIL_FAST_WAITING = frozenset({"CreateContainerConfigError", "InvalidImageName", "ErrImageNeverPull"})
#: CreateContainerConfigError messages the kubelet retries by itself: its Secret or ConfigMap cache had not
#: synced yet (the apiserver's Node authorizer learns of a just-scheduled pod a moment after the kubelet).
#: Such a pod starts a second later; if it never does, the pending timeout still ends the step.
TRANSIENT_CONFIG_ERRORS = ("failed to sync secret cache", "failed to sync configmap cache")

DataT = TypeVar("DataT", bound=results.StepData)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a step ended."""

    ok: bool
    reason: str
    message: str
    exit_code: int | None = None
    #: The step's result, read by :func:`results.parse` (None: it left none, or the outcome was replayed).
    result: results.StepResult[Any] | None = None
    #: Whether the database may have changed: True/False from the step's result, None if unknown.
    changed: bool | None = None
    #: Delete the Job (its pod is stuck or evicted and would linger).
    delete_job: bool = False
    #: The step failed without changing anything and says a new attempt may pass (the server or S3 was away).
    retry: bool | None = None

    def data(self, model: type[DataT]) -> DataT | None:
        """The step's typed data (``results.PlanResult``...), if its result was read."""
        data = self.result.data if self.result is not None else None
        return data if isinstance(data, model) else None

    @classmethod
    def replay(cls, ss: StepStatus) -> Outcome:
        """The outcome recorded in status (a transition was interrupted after it was stored)."""
        return cls(
            ok=ss.outcome == "Succeeded",
            reason=ss.reason or "",
            message=ss.message or "",
            exit_code=ss.exit_code,
            retry=ss.retry,
        )


def evaluate(ctx: Context, step: Step, ss: StepStatus, job: JobObservation) -> Outcome | None:
    """The step's outcome from its Job and Pod, or None while it runs (then schedule a re-check)."""
    if _pod_on_its_way(ctx, job):
        return None
    if job.complete:
        return _completed(step, job.pod)
    if job.has_failed:
        return _failed(ctx, step, job)
    return _stuck(ctx, step, ss, job.pod)


def _pod_on_its_way(ctx: Context, job: JobObservation) -> bool:
    """The Job ended but its Pod's end (and the step's result) has not arrived yet (:attr:`~JobObservation.
    pod_behind`): wait for it, at most ``job_grace_seconds`` after the Job ended, rather than read a
    success without a result as a failed backup. The Pod's event wakes the run."""
    if not job.pod_behind or job.end_time is None:
        return False
    waited = (ctx.now - job.end_time).total_seconds()
    grace = ctx.settings.reconcile.job_grace_seconds
    if waited >= grace:
        return False
    ctx.wake(min(2.0, grace - waited))  # the Pod's event wakes the run sooner; this, if it never comes
    return True


def _completed(step: Step, pod: PodObservation | None) -> Outcome:
    """A Job that succeeded; a result it left but we cannot read makes it a failure (changes unknown)."""
    exit_code = pod.exit_code if pod else None
    result = results.parse(result_of(step), pod.termination_message) if pod else None
    if result is None:  # e.g. a plain `alembic upgrade head` as the migrate command
        return Outcome(
            ok=True,
            reason=Reason.NO_RESULT,
            exit_code=exit_code,
            message=f"the {step} step succeeded without a readable result",
        )
    if isinstance(result, results.Unreadable):
        return Outcome(
            ok=False, reason=Reason.UNREADABLE_RESULT, exit_code=exit_code, changed=None, message=quote(result.message)
        )
    return Outcome(
        ok=True,
        reason=Reason.STEP_SUCCEEDED,
        message=quote(result.message),
        exit_code=exit_code,
        result=result,
        changed=result.changed_database,
    )


def _failed(ctx: Context, step: Step, job: JobObservation) -> Outcome:
    pod = job.pod
    exit_code = pod.exit_code if pod else None
    result = results.parse(result_of(step), pod.termination_message) if pod else None
    condition = job.failed_condition
    if condition is not None and condition.reason == "DeadlineExceeded":
        return Outcome(
            ok=False,
            reason=Reason.DEADLINE_EXCEEDED,
            exit_code=exit_code,
            result=result if isinstance(result, results.StepResult) else None,
            message=f"the {step} step exceeded its deadline of {ctx.spec.timeouts.for_step(step)}s",
        )
    if pod is not None and pod.reason == "Evicted":
        return _evicted(step, pod, delete_job=False)
    if isinstance(result, results.StepResult):
        data = result.data
        retry = isinstance(data, results.RestoreResult) and data.retryable and not result.changed_database
        return Outcome(
            ok=False,
            reason=_reason(result.reason),
            exit_code=exit_code,
            result=result,
            message=quote(result.message) or f"the {step} step failed",
            changed=result.changed_database,
            retry=retry,
        )
    if isinstance(result, results.Unreadable) and _meant_as_result(pod):
        return Outcome(
            ok=False, reason=Reason.UNREADABLE_RESULT, exit_code=exit_code, changed=None, message=quote(result.message)
        )
    # No result: the step crashed, or its command is not ours (the message is the log's tail).
    return Outcome(ok=False, reason=Reason.STEP_FAILED, exit_code=exit_code, message=_raw_failure(step, job))


def _evicted(step: Step, pod: PodObservation, *, delete_job: bool) -> Outcome:
    return Outcome(
        ok=False,
        reason=Reason.POD_EVICTED,
        exit_code=pod.exit_code,
        delete_job=delete_job,
        message=f"the {step} pod was evicted: {quote(pod.message)}".rstrip(": "),
    )


def _stopped(reason: str, message: str, *, changed: bool | None = None) -> Outcome:
    """A step the operator ends itself: its Job is deleted, or it would linger until its deadline."""
    return Outcome(ok=False, reason=reason, message=message, changed=changed, delete_job=True)


def _meant_as_result(pod: PodObservation | None) -> bool:
    """Whether the termination message looks like a result (JSON), not the log's tail (FallbackToLogsOnError)."""
    return pod is not None and (pod.termination_message or "").lstrip().startswith("{")


def _stuck(ctx: Context, step: Step, ss: StepStatus, pod: PodObservation | None) -> Outcome | None:
    """A Job still running or never started: fail it if its pod cannot start or it overran; else wait."""
    if pod is not None and pod.reason == "Evicted":
        return _evicted(step, pod, delete_job=True)  # the Job would wait for its deadline
    if pod is not None and _cannot_start(pod):
        message = f"the {step} pod cannot start: {pod.waiting_reason}: {quote(pod.waiting_message)}"
        return _stopped(Reason.POD_CONFIG_ERROR, message.rstrip(": "), changed=False)
    timeouts = ctx.spec.timeouts
    elapsed = (ctx.now - (ss.started_at or ctx.now)).total_seconds()
    not_started = pod is None or (pod.started_at is None and pod.phase in (None, "Pending"))
    if not_started and elapsed > timeouts.pending_seconds:
        why = f"{pod.waiting_reason}: {quote(pod.waiting_message)}" if pod and pod.waiting_reason else "no pod started"
        message = f"the {step} pod did not start within {timeouts.pending_seconds}s: {why}"
        return _stopped(Reason.POD_NOT_STARTED, message.rstrip(": "), changed=False)
    deadline = timeouts.for_step(step)
    backstop = deadline + ctx.settings.jobs.deadline_slack_seconds
    if elapsed > backstop:
        return _stopped(Reason.DEADLINE_EXCEEDED, f"the {step} step exceeded its deadline of {deadline}s")
    poll = ctx.settings.reconcile.poll_seconds
    if not_started and pod is not None and pod.waiting_reason:
        ctx.status.message = (
            f"the {step} pod is not running yet: {pod.waiting_reason}: {quote(pod.waiting_message, 200)}"
        ).rstrip(": ")
        ctx.wake(min(poll, max(1.0, timeouts.pending_seconds - elapsed + 1)))
    else:
        ctx.status.message = ctx.running_message(step, ss.attempt)
        ctx.wake(min(poll, max(1.0, backstop - elapsed + 1)))
    return None


def _cannot_start(pod: PodObservation) -> bool:
    """Whether the pod waits for something that will not come (a missing Secret key, a bad image name)."""
    if pod.waiting_reason not in FAIL_FAST_WAITING:
        return False
    return not any(transient in (pod.waiting_message or "") for transient in TRANSIENT_CONFIG_ERRORS)


def _raw_failure(step: Step, job: JobObservation) -> str:
    """What failed, from the Job and Pod alone (the step left no result)."""
    pod = job.pod
    if pod is None:
        condition = job.failed_condition
        detail = f": {condition.reason}" if condition and condition.reason else ""
        return f"the {step} Job failed{detail}"
    what = (
        f"the {step} container exited with code {pod.exit_code}"
        if pod.exit_code is not None
        else f"the {step} pod failed"
    )
    if pod.termination_reason and pod.termination_reason not in ("Error", "Completed"):
        what += f" ({pod.termination_reason})"
    tail = quote(pod.termination_message, 300)
    return f"{what}: {tail}" if tail else what


def _reason(value: Any) -> str:
    """A step's reason if it is a valid condition reason (CamelCase), else StepFailed."""
    text = str(value or "")
    valid = re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", text) and len(text) < 128
    return text if valid else Reason.STEP_FAILED
