"""Carry out a reconciler Decision against the API, in the crash-safe order.

Order (see :mod:`alembic_operator.controller.reconciler`): scale fenced workloads
(idempotent; the replicas to put back are already in the stored status),
create Jobs (409 = already there: names are deterministic), delete Jobs,
write the whole status, post Events. A failed create raises before the status is written, so the next
reconcile decides the same create again. The status is written only over the version of the run the
decision was made from (its resourceVersion is the patch's precondition): a decision from a run that a
lagging watch delivered late cannot overwrite a newer status (:class:`.apiserver.Conflict`).
Must not: decide anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from alembic_operator.api import model, text
from alembic_operator.controller import apiserver, metrics, reconciler

log = logging.getLogger(__name__)


def apply(decision: reconciler.Decision, *, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Apply ``decision`` to the run ``body``; return the patched object (None if the run is gone)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    # Write fence (issue #9): before the status, so a failed scale is decided again next time.
    for scale in decision.scales:
        found = apiserver.set_replicas(namespace=namespace, kind=scale.kind, name=scale.name, replicas=scale.replicas)
        log.info(
            "%s/%s: write fence: %s/%s %s",
            namespace,
            name,
            scale.kind,
            scale.name,
            f"scaled to {scale.replicas}" if found else "is gone; nothing to scale",
        )
    for create in decision.creates:
        created = apiserver.create_job(namespace=namespace, manifest=create.manifest)
        log.info("%s/%s: %s Job %s", namespace, name, "created" if created else "adopted", create.name)
    for delete in decision.deletes:
        apiserver.delete_job(namespace=namespace, name=delete.name, propagation=delete.propagation_policy)
        log.info("%s/%s: deleted Job %s", namespace, name, delete.name)
    old_status, new_status = body.get("status") or {}, model.dump(decision.status)
    patched, refused = None, False
    try:
        if new_status != old_status:
            patched = apiserver.patch_run_status(
                namespace=namespace,
                name=name,
                status=_with_removals(old=old_status, new=new_status),
                resource_version=meta.get("resourceVersion"),
            )
    except apiserver.Conflict:
        refused = True  # decided from an older version of the run: not stored, so nothing to count
        raise
    finally:
        # Counted as soon as the patch was sent, even if its call raised: the apiserver may have stored it
        # with the response lost, and the retry would then find the step already finished and count nothing.
        # metrics.once keys each count on the run and step Job, so a retry deciding the same finish again
        # after a patch that was not stored does not count it twice.
        if not refused:
            _observe_metrics(run_uid=str(meta.get("uid") or ""), old=old_status, new=new_status)
            metrics.observe_database(body=body, old=old_status, new=new_status)
    for event in decision.events:
        apiserver.emit_event(run=dict(body), type_=event.type, reason=event.reason, message=event.message)
    return patched


def _with_removals(*, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that also clears keys the new status dropped (JSON merge-patch: null), at every depth.

    Nested objects matter: a step record replaced by a fresh one (a new restore
    attempt after an approved hold) must lose its old outcome, or the stale
    fields would survive the merge and be read back next time.
    """
    patch: dict[str, Any] = dict(new)
    for key, value in old.items():
        if key not in new:
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(new[key], dict):
            patch[key] = _with_removals(old=value, new=new[key])
    return patch


def _observe_metrics(*, run_uid: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Count terminal transitions, finished steps and backup bytes once each (on the transition, and at most
    once per run and step Job in this process: :func:`metrics.once`)."""
    phase = new.get("phase")
    if phase != old.get("phase") and phase in model.TERMINAL_PHASE_VALUES and metrics.once(f"{run_uid}/finished"):
        metrics.RUNS_FINISHED.labels(phase=phase).inc()
    old_steps, new_steps = old.get("steps") or {}, new.get("steps") or {}
    for step, info in new_steps.items():
        if info.get("finishedAt") and not (old_steps.get(step) or {}).get("finishedAt") and info.get("startedAt"):
            started = text.parse_timestamp(info["startedAt"])
            finished = text.parse_timestamp(info["finishedAt"])
            if started and finished and metrics.once(f"{run_uid}/{step}/{info.get('job')}"):
                metrics.STEP_DURATION.labels(step=step, outcome=info.get("outcome") or "Unknown").observe(
                    (finished - started).total_seconds()
                )
    size = (new.get("backup") or {}).get("sizeBytes")
    if size and not (old.get("backup") or {}).get("sizeBytes") and metrics.once(f"{run_uid}/backup"):
        metrics.BACKUP_BYTES.inc(size)
