"""The operator's Kopf indexes of its step Jobs and Pods and of the runs: what a reconcile reads.

Kopf already watches the runs, the operator's Jobs and their Pods (their events wake the
reconciles); these indexes keep the last state each watch delivered, cut down by
:mod:`.observing`'s ``slim_*`` to the fields the reconciler reads, so a reconcile reads no
LIST or GET (issue 18: a reconcile used to list the run's Jobs and Pods and get the run, ~40
requests per run). Kopf fills every index from its initial listing before any other handler
runs, and updates an index before the handlers of the same event.

A watch lags the apiserver by a little: the reconciler already waits out a Job it created
and does not see yet (``ReconcileSettings.job_grace_seconds``), and the handler reads a run
as the newer of this index and its own last write (:func:`observing.newest`).

Must not: decide or call the API; keep a field that no reconcile reads (memory at 1,000 runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from alembic_operator.api import constants, model
from alembic_operator.controller import observing

RunKey = tuple[str, str]
"""(namespace, name) of a MigrationRun; for Jobs and Pods, (namespace, the run's label value)."""

Slim = dict[str, Any]
"""An object cut down by ``observing.slim_*``."""

_OURS = {constants.LABEL_MANAGED_BY: constants.MANAGED_BY}


def _by_run(body: kopf.Body, namespace: str | None) -> RunKey | None:
    run = (body.get("metadata", {}).get("labels") or {}).get(constants.LABEL_RUN)
    return (namespace, str(run)) if namespace and run else None


@kopf.index("batch", "v1", "jobs", labels=_OURS)
def step_jobs(body: kopf.Body, namespace: str | None, **_: Any) -> dict[RunKey, Slim]:
    """The operator's Jobs under their run's label value, slimmed."""
    key = _by_run(body, namespace)
    return {key: observing.plain(observing.slim_job(body))} if key else {}


@kopf.index("", "v1", "pods", labels=_OURS)
def step_pods(body: kopf.Body, namespace: str | None, **_: Any) -> dict[RunKey, Slim]:
    """The step Jobs' Pods under their run's label value, slimmed (the step container's state only)."""
    key = _by_run(body, namespace)
    return {key: observing.plain(observing.slim_pod(body))} if key else {}


@kopf.index(constants.GROUP, constants.VERSION, constants.PLURAL)
def runs(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[RunKey, Slim]:
    """Every run under (namespace, name), slimmed: the body a reconcile starts from."""
    return {(namespace, name): observing.plain(observing.slim_run(body))} if namespace else {}


def listed(index: kopf.Index[RunKey, Slim] | None, key: RunKey) -> list[Slim]:
    """What ``index`` holds under ``key`` (none when nothing does)."""
    if index is None or key not in index:
        return []
    return list(index[key])


class Snapshot:
    """What one reconcile of a run reads: its body and its Jobs' and Pods' slim dicts (taken on Kopf's loop)."""

    __slots__ = ("jobs", "pods", "run")

    def __init__(self, *, run: Slim | None, jobs: list[Slim], pods: list[Slim]) -> None:
        self.run, self.jobs, self.pods = run, jobs, pods


class Indexes:
    """Kopf's live indexes (attached at start-up) plus the runs as this operator last wrote them.

    Read it on Kopf's event loop only (:meth:`snapshot`): Kopf changes the indexes there, and a
    worker thread iterating one meanwhile could see it change size.
    """

    def __init__(self) -> None:
        self.jobs: kopf.Index[RunKey, Slim] | None = None
        self.pods: kopf.Index[RunKey, Slim] | None = None
        self.runs: kopf.Index[RunKey, Slim] | None = None
        self.written: dict[RunKey, Slim] = {}
        """Each run as our last patch returned it, until the run's watch delivers that version or newer."""

    def attach(self, indices: dict[str, Any]) -> None:
        """Keep Kopf's index objects (passed to start-up handlers under their functions' names)."""
        self.jobs, self.pods, self.runs = indices["step_jobs"], indices["step_pods"], indices["runs"]

    def _run(self, key: RunKey) -> Mapping[str, Any] | None:
        """The newer of the index's run and our last write of it; forgets the write once the watch has it."""
        assert self.runs is not None
        indexed = listed(self.runs, key)
        run = observing.newest(indexed[0] if indexed else None, self.written.get(key))
        if run is not None and run is not self.written.get(key):
            self.written.pop(key, None)  # the watch caught up with our write
        return run

    def snapshot(self, namespace: str, name: str, label: str) -> Snapshot | None:
        """The run (the newer of the index and our last write; None: in neither) and its Jobs and Pods
        (under the run's ``label`` value); None before the indexes are attached (then read the API)."""
        if self.runs is None:
            return None
        run = self._run((namespace, name))
        return Snapshot(
            run=dict(run) if run is not None else None,
            jobs=listed(self.jobs, (namespace, label)),
            pods=listed(self.pods, (namespace, label)),
        )

    def settled(self, namespace: str, name: str) -> bool:
        """The run ended for good: its terminal status is stored, our finalizer is gone and it is not being
        deleted. Its Jobs' and Pods' later events (the kubelet and the Job controller catching up after the
        step's container ended) change nothing a reconcile would do, so they need none: a dozen no-op
        passes per ended run otherwise (issue 14 bounds a failed run's reconciles)."""
        if self.runs is None:
            return False
        run = self._run((namespace, name))
        if run is None:
            return False
        meta = run.get("metadata") or {}
        return (
            (run.get("status") or {}).get("phase") in model.TERMINAL_PHASE_VALUES
            and not meta.get("deletionTimestamp")
            and constants.FINALIZER not in (meta.get("finalizers") or [])
        )

    def wrote(self, body: dict[str, Any] | None) -> None:
        """Remember a run as a patch returned it (a later reconcile must not start from an older one)."""
        if body is not None:
            meta = body["metadata"]
            self.written[(meta["namespace"], meta["name"])] = observing.slim_run(body)

    def forget(self, key: RunKey) -> None:
        self.written.pop(key, None)
