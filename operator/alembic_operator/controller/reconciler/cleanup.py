"""Which step Jobs of an ended run are due for deletion (their Pods and logs go with them).

Why: an ended run's results are all in its status (each step's outcome, the backup's URI, size and
digests), but its step Jobs and their finished Pods stayed until the run itself was deleted. At 1,000
runs one node held 3,450 finished Pods, the kubelet took 245 s to start a new one, and Kopf kept state
for every Job and Pod (issue 18). Kubernetes' own ``ttlSecondsAfterFinished`` counts from the Job's end,
which may come before the operator read the step's result (an operator down for longer would find the
Job gone and take the step as vanished); this counts from the run's end, once the status holds it all.

Kept: every Job of a run not yet ended; a Job still running or already being deleted; while
``JobSettings.retain_failed``, a Job that failed or whose step failed (its log says why, and
``kubectl alembic why`` names it). A Job that is not the run's own is never seen here
(``observing.observed_jobs`` keeps only the Jobs the run controls).

Must not: call the API or read the clock (``now`` is given); touch a run that is being deleted (its
finalizer path waits for its Jobs, and owner references delete them after it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alembic_operator.api.model import TERMINAL_PHASES, MigrationRunStatus
from alembic_operator.api.steps import STEPS
from alembic_operator.controller.reconciler.inputs import JobObservation, Observed
from alembic_operator.controller.settings import JobSettings


def due_at(status: MigrationRunStatus, settings: JobSettings) -> datetime | None:
    """When the ended run's Jobs may go: its end plus ``retain_seconds`` (None: not ended, or keep them)."""
    if settings.retain_seconds is None or status.phase not in TERMINAL_PHASES or status.finished_at is None:
        return None
    return status.finished_at + timedelta(seconds=settings.retain_seconds)


def due(*, status: MigrationRunStatus, observed: Observed, now: datetime, settings: JobSettings) -> list[str]:
    """The names of the run's Jobs to delete now, in name order (empty until :func:`due_at`)."""
    when = due_at(status, settings)
    if when is None or now < when:
        return []
    failed_steps = {
        record.job
        for record in (status.steps.get(step) for step in STEPS)
        if record is not None and record.job and record.outcome == "Failed"
    }
    return sorted(
        job.name
        for job in observed.jobs.values()
        if _finished(job) and not (settings.retain_failed and (job.has_failed or job.name in failed_steps))
    )


def _finished(job: JobObservation) -> bool:
    """Ended for good and not already going: nothing of it can still run or be read by a reconcile."""
    return not job.deleting and not job.pods_alive and (job.complete or job.has_failed)
