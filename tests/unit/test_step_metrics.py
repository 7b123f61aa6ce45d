"""Every finished step's duration is counted exactly once, also when the reconcile raises after its status patch.

The fault is injected at the API door (:mod:`alembic_operator.controller.apiserver`): the status patch is stored, then
the next call raises (a connection reset while posting the Event); the retry reads the stored status,
in which the step already finished. Counts are read from the real Prometheus registry.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
from prometheus_client import REGISTRY

from alembic_operator.api import model
from alembic_operator.controller import apiserver, applying, reconciler

STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def count(step: str = "plan") -> float:
    labels = {"step": step, "outcome": "Succeeded"}
    return REGISTRY.get_sample_value("alembic_operator_step_duration_seconds_count", labels) or 0.0


def run_body(status: dict[str, Any]) -> dict[str, Any]:
    uid = str(uuid.uuid4())  # a fresh run per test: the counts are process-wide
    return {"metadata": {"namespace": "shop", "name": "r", "uid": uid, "resourceVersion": "1"}, "status": status}


def plan_finished(*, after_seconds: float) -> reconciler.Decision:
    """The Decision of the reconcile that saw the plan Pod end: plan Succeeded, the backup starts."""
    status = model.parse_status(
        {
            "phase": "BackingUp",
            "steps": {
                "plan": {
                    "job": "r-plan-1",
                    "attempt": 1,
                    "startedAt": STARTED.isoformat(),
                    "finishedAt": (STARTED + timedelta(seconds=after_seconds)).isoformat(),
                    "outcome": "Succeeded",
                },
                "backup": {"job": "r-backup-1", "attempt": 1, "startedAt": STARTED.isoformat()},
            },
        }
    )
    return reconciler.Decision(
        status=status, actions=[reconciler.EmitEvent(type="Normal", reason="PlanSucceeded", message="ok")]
    )


class Api:
    """The API door with a stored status; ``fail`` names the call that raises after the patch was stored."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, fail: str) -> None:
        self.stored: dict[str, Any] | None = None
        self.fail = fail
        monkeypatch.setattr(apiserver, "patch_run_status", self.patch_status)
        monkeypatch.setattr(apiserver, "emit_event", self.emit_event)

    def patch_status(self, *, namespace: str, name: str, status: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.stored = {k: v for k, v in status.items() if v is not None}
        if self.fail == "patch response":
            raise urllib3.exceptions.ProtocolError("Connection reset by peer")  # stored, but no answer
        return {"status": self.stored}

    def emit_event(self, **_: Any) -> None:
        if self.fail == "event":
            raise urllib3.exceptions.ProtocolError("Connection reset by peer")


@pytest.mark.parametrize("fail", ["event", "patch response"])
def test_a_step_is_counted_once_when_the_reconcile_raises_after_its_status_was_stored(
    monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    api = Api(monkeypatch, fail=fail)
    body = run_body({"phase": "Planning", "steps": {"plan": {"job": "r-plan-1", "startedAt": STARTED.isoformat()}}})
    before = count()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        applying.apply(plan_finished(after_seconds=4), body=body)
    assert count() == before + 1
    # The retry reads the stored status (plan finished) and decides the next thing: nothing more counted.
    retry = copy.deepcopy(body) | {"status": api.stored}
    api.fail = ""
    applying.apply(plan_finished(after_seconds=4), body=retry)
    assert count() == before + 1


def test_a_finish_decided_again_after_a_status_patch_that_was_not_stored_is_not_counted_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = run_body({"phase": "Planning", "steps": {"plan": {"job": "r-plan-1", "startedAt": STARTED.isoformat()}}})

    def refused(**_: Any) -> None:
        raise urllib3.exceptions.ProtocolError("Connection reset by peer")

    monkeypatch.setattr(apiserver, "patch_run_status", refused)
    before = count()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        applying.apply(plan_finished(after_seconds=4), body=body)
    Api(monkeypatch, fail="")
    applying.apply(plan_finished(after_seconds=9), body=body)  # the same old status: the same finish again
    assert count() == before + 1


def test_each_run_and_each_attempt_counts_its_own_step(monkeypatch: pytest.MonkeyPatch) -> None:
    Api(monkeypatch, fail="")
    before = count()
    for _ in range(3):
        body = run_body({"phase": "Planning", "steps": {"plan": {"job": "r-plan-1", "startedAt": STARTED.isoformat()}}})
        applying.apply(plan_finished(after_seconds=4), body=body)
    assert count() == before + 3


def test_a_status_refused_as_decided_from_an_older_run_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Conflict means the apiserver stored nothing: the decision is made again from the current run."""
    body = run_body({"phase": "Planning", "steps": {"plan": {"job": "r-plan-1", "startedAt": STARTED.isoformat()}}})
    sent: list[str | None] = []

    def conflict(*, resource_version: str | None = None, **_: Any) -> None:
        sent.append(resource_version)
        raise apiserver.Conflict("the object has been modified")

    monkeypatch.setattr(apiserver, "patch_run_status", conflict)
    before = count()
    with pytest.raises(apiserver.Conflict):
        applying.apply(plan_finished(after_seconds=4), body=body)
    assert count() == before
    assert sent == [body["metadata"]["resourceVersion"]]
