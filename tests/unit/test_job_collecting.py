"""The cleanup loop reads only the indexes: which (namespace, run, Job) it deletes, and which it never touches.

Kopf's indexes are mappings of key → store of values; plain dicts of lists stand in for them (the
real deletion, garbage collector and node included, is tests/e2e/test_job_cleanup.py's).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic_operator.api import constants
from alembic_operator.controller import collecting, indexes
from alembic_operator.controller.settings import JobSettings

NS, UID = "shop", "uid-of-r"
ENDED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = ENDED + timedelta(seconds=JobSettings().retain_seconds or 0)


def _run(phase: str, *, deleting: bool = False, finished: datetime | None = ENDED) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r", "namespace": NS, "uid": UID}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T12:00:00Z"
        meta["finalizers"] = [constants.FINALIZER]
    status: dict[str, Any] = {"phase": phase, "steps": {"plan": {"job": "r-plan", "outcome": "Succeeded"}}}
    if finished is not None:
        status["finishedAt"] = finished.isoformat().replace("+00:00", "Z")
    return {"metadata": meta, "spec": {}, "status": status}


def _job(name: str, owner: str = UID) -> dict[str, Any]:
    ref = {"kind": "MigrationRun", "name": "r", "uid": owner, "controller": True}
    return {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "ownerReferences": [ref]},
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    }


def _seen(run: dict[str, Any], *jobs: dict[str, Any]) -> indexes.Indexes:
    found = indexes.Indexes()
    index: dict[Any, list[Any]] = {(NS, "r"): list(jobs)}
    found.attach({"runs": {(NS, "r"): [run]}, "step_jobs": index, "step_pods": {}})  # type: ignore[dict-item]
    return found


DEFAULT = JobSettings()


def _due(seen: indexes.Indexes, settings: JobSettings = DEFAULT, now: datetime = LATER) -> list[tuple[str, ...]]:
    return list(collecting.due_jobs(seen, settings, now=now))


def test_an_ended_runs_own_jobs_are_due_once_retain_seconds_passed():
    seen = _seen(_run("Succeeded"), _job("r-plan"), _job("r-backup"))
    assert _due(seen) == [(NS, "r", "r-backup"), (NS, "r", "r-plan")]
    assert _due(seen, now=LATER - timedelta(seconds=1)) == []


def test_a_look_alike_job_another_owner_controls_is_never_deleted():
    seen = _seen(_run("Succeeded"), _job("r-plan"), _job("r-backup", owner="someone-else"))
    assert _due(seen) == [(NS, "r", "r-plan")]


def test_unfinished_or_deleted_runs_and_forever_leave_every_job():
    job = _job("r-plan")
    assert _due(_seen(_run("Migrating"), job), now=LATER + timedelta(days=30)) == []
    assert _due(_seen(_run("Succeeded", deleting=True), job)) == []
    assert _due(_seen(_run("Succeeded"), job), JobSettings(retain_seconds=None)) == []


def test_before_the_indexes_are_attached_nothing_is_due():
    assert _due(indexes.Indexes()) == []
