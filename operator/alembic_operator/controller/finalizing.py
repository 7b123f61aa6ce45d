"""Our finalizer on a run mid-way, and the release of a deleted run.

A run mid-way carries :data:`constants.FINALIZER`; it goes only once the final status (and a write
fence's scale-back) is stored, or, for a deleted run, once no step Job runs any more (a restore is
never cut short), the fence is lifted and a rehearsal's scratch database is dropped (a drop Job).
The run's Jobs then go with it by owner reference; the backup in S3 stays.

Must not: decide a step (the reconciler does); read anything but the run itself, and that only on
a conflict or after lifting a fence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from alembic_operator.api import constants, model
from alembic_operator.controller import apiserver, applying, observing, reconciler
from alembic_operator.controller import indexes as indexes_mod
from alembic_operator.controller.settings import Settings

log = logging.getLogger(__name__)

DELETION_POLL_SECONDS = 5.0
"""Seconds between checks while a deleted run waits for its running step to finish."""


def set_finalizer(
    body: Mapping[str, Any], *, wanted: bool, indexes: indexes_mod.Indexes | None = None
) -> Mapping[str, Any]:
    """Add or remove our finalizer and return the run as patched. The list is replaced whole, so the
    patch carries the resourceVersion it was read at; on a conflict (the run changed since it was read:
    a person's approval annotation, an edit) the run is read once more and the patch tried again."""
    try:
        patched = _patch_finalizers(body, wanted=wanted)
    except apiserver.Conflict:
        fresh = apiserver.get_run(namespace=body["metadata"]["namespace"], name=body["metadata"]["name"])
        if fresh is None:
            return body
        patched = _patch_finalizers(fresh, wanted=wanted)
    if indexes is not None and patched is not None:
        indexes.wrote(dict(patched))
    return patched or body


def _patch_finalizers(body: Mapping[str, Any], *, wanted: bool) -> Mapping[str, Any] | None:
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if wanted == (constants.FINALIZER in finalizers):
        return body
    if wanted:
        finalizers.append(constants.FINALIZER)
    else:
        finalizers.remove(constants.FINALIZER)
    return apiserver.patch_run_metadata(
        namespace=meta["namespace"],
        name=meta["name"],
        metadata={"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]},
    )


def finish_deletion(
    body: Mapping[str, Any], jobs: list[dict[str, Any]], settings: Settings | None = None
) -> float | None:
    """Release a deleted run once no step Job is running (and its scratch database is dropped); until then
    check again soon."""
    running = [j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("active")]
    if running:
        log.info(
            "%s/%s is being deleted; waiting for %s to finish",
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            ", ".join(running),
        )
        return DELETION_POLL_SECONDS
    # Write fence (issue #9): a deleted run puts the workloads back; the database is left as it is.
    status = model.parse_status(body.get("status"))
    if status.fence is not None or reconciler.holding(status):
        inputs = _rehearsal_inputs(body, jobs, settings)
        decision = reconciler.release(status=status, now=datetime.now(UTC), **inputs)
        if decision.actions or decision.status != status:
            applying.apply(decision, body=body)
            fresh = apiserver.get_run(namespace=body["metadata"]["namespace"], name=body["metadata"]["name"])
            if fresh is None:
                return None
            body = fresh
        if inputs and reconciler.holding(decision.status):  # the scratch database's drop Job is running
            return DELETION_POLL_SECONDS
    set_finalizer(body, wanted=False)
    return None


def _rehearsal_inputs(body: Mapping[str, Any], jobs: list[dict[str, Any]], settings: Settings | None) -> dict[str, Any]:
    """What :func:`reconciler.release` needs to drop a rehearsal's copy: the run, its Jobs, the settings."""
    try:
        run = observing.run_view(body)
    except pydantic.ValidationError:  # a run whose spec does not parse cannot build a drop Job: let it go
        return {}
    observed = observing.observed_jobs(jobs, [], run_uid=run.uid)
    return {"run": run, "observed": observed, "settings": settings}
