"""Delete the step Jobs of ended runs once they are due (:mod:`.reconciler.cleanup` decides which).

One loop over the runs index (:mod:`.sweeping`), every :data:`SWEEP_SECONDS`: for each ended run that
still has Jobs in the Jobs index, the pure :func:`~.reconciler.cleanup.due` names the ones to delete,
and each is deleted with propagation Background (the garbage collector then deletes its Pods; the
kubelet removes their containers and logs). An ended run with no Jobs left costs a dictionary look-up
per pass, so the loop stays cheap at 1,000 runs; it reads no API (the indexes are the watches).

A deleted Job's watch event reaches the handlers as for any Job, but an ended, settled run is not
reconciled for its Jobs' events (:meth:`.indexes.Indexes.settled`), and a terminal run's reconcile
never looks at its Jobs. Its status names each step's Job even after it is gone.

Must not: decide which Jobs go (the reconciler's cleanup does), or touch a run that is unfinished or
being deleted (:func:`.sweeping.unfinished`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from alembic_operator.api import model
from alembic_operator.controller import apiserver, indexes, metrics, naming, observing, sweeping
from alembic_operator.controller.reconciler import cleanup
from alembic_operator.controller.settings import JobSettings

log = logging.getLogger(__name__)

SWEEP_SECONDS = 15.0
"""How often ended runs are looked at: a run's Jobs go between ``retain_seconds`` and this much later."""


def due_jobs(seen: indexes.Indexes, settings: JobSettings, *, now: datetime) -> Iterator[tuple[str, str, str]]:
    """(namespace, run, Job) of each Job due for deletion, from what the indexes hold now (on Kopf's loop)."""
    if settings.retain_seconds is None:
        return
    for (namespace, name), run in sweeping.runs(seen.runs):
        if sweeping.unfinished(run):
            continue
        label = naming.label_value(name)
        jobs = indexes.listed(seen.jobs, (namespace, label))
        if not jobs:
            continue
        uid = str((run.get("metadata") or {}).get("uid") or "")
        observed = observing.observed_jobs(jobs, indexes.listed(seen.pods, (namespace, label)), run_uid=uid)
        status = model.parse_status(run.get("status"))
        for job in cleanup.due(status=status, observed=observed, now=now, settings=settings):
            yield namespace, name, job


async def sweep(seen: indexes.Indexes, settings: JobSettings) -> None:
    """One pass: delete every Job due now, one API call each, in a thread (the loop keeps serving events)."""
    for namespace, run, job in list(due_jobs(seen, settings, now=datetime.now(UTC))):
        await asyncio.to_thread(apiserver.delete_job, namespace=namespace, name=job, propagation="Background")
        metrics.JOBS_DELETED.inc()
        log.info("%s/%s: deleted Job %s: the run ended and its results are in its status", namespace, run, job)
