"""A run that ends (or goes) wakes the runs waiting on its database at once (issue 18: the next one
used to start at its queued re-check, up to ``queued_poll_seconds`` later); with the operator-wide
limit of runs running at once, it also wakes the oldest runs waiting for a slot, as many as fit.

The handlers' own scheduling runs on a real event loop over an index shaped like Kopf's; the
blocking read-decide-apply pass is replaced by one that records which runs it was asked for.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alembic_operator.api.model import Phase
from alembic_operator.controller import handlers, observing
from alembic_operator.controller.reconciler import RunSummary
from alembic_operator.controller.settings import ReconcileSettings, Settings

NS = "shop"
T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _body(name: str, secret: str, phase: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "creationTimestamp": "2026-11-30T00:00:00Z"},
        "spec": {
            "database": {"urlSecretRef": {"name": secret, "key": "DATABASE_URL"}},
            "migrate": {"image": "app:1"},
            "backup": {"s3": {"bucket": "backups", "credentialsSecretRef": {"name": "s3"}}},
        },
        "status": {"phase": phase} if phase else {},
    }


def _database(secret: str) -> str:
    summary = observing.run_summary(_body("x", secret, None))
    assert summary is not None
    return summary.database


def _woken(monkeypatch: pytest.MonkeyPatch, *, event: str, phase: str | None, limit: int | None = None) -> list[str]:
    reconciled: list[str] = []

    def record(_memo: Any, _namespace: str, name: str, *_: Any) -> float:
        reconciled.append(name)
        return 600.0

    async def scenario() -> None:
        monkeypatch.setattr(handlers, "_reconcile_blocking", record)
        db, other_db, third_db, fourth_db = (_database(s) for s in ("db", "other", "third", "fourth"))
        memo = handlers.ControllerMemo(settings=Settings(reconcile=ReconcileSettings(max_running_runs=limit)))
        memo.index = {  # type: ignore[assignment]  # Kopf's Index is a mapping of key -> store of values
            (NS, db): [
                RunSummary("first", db, T0, Phase(phase) if phase else None, NS),
                RunSummary("waiting", db, T0 + timedelta(seconds=1), Phase.QUEUED, NS),
                RunSummary("new", db, T0 + timedelta(seconds=2), None, NS),
                RunSummary("failing", db, T0 + timedelta(seconds=3), Phase.QUEUED, NS),
                RunSummary("done", db, T0 - timedelta(seconds=9), Phase.SUCCEEDED, NS),
            ],
            (NS, other_db): [RunSummary("elsewhere", other_db, T0, Phase.QUEUED, NS)],
            (NS, third_db): [
                RunSummary("busy", third_db, T0, Phase.MIGRATING, NS),
                RunSummary("behind-busy", third_db, T0, Phase.QUEUED, NS),
            ],
            ("other-ns", fourth_db): [RunSummary("young", fourth_db, T0 + timedelta(seconds=5), None, "other-ns")],
        }
        memo.retry_at[(NS, "failing")] = asyncio.get_running_loop().time() + 300  # its reconcile keeps raising
        on_run: Any = handlers._on_run  # Kopf's decorator types it as a handler; it is the plain coroutine
        await on_run(type=event, body=_body("first", "db", phase), namespace=NS, name="first", memo=memo)
        await asyncio.sleep(0.05)  # the wake-ups are scheduled with no delay
        for timer in memo.timers.values():
            timer.cancel()

    asyncio.run(scenario())
    return sorted(set(reconciled) - {"first"})


def test_a_run_that_ends_wakes_the_runs_waiting_on_its_database_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _woken(monkeypatch, event="MODIFIED", phase="Succeeded") == ["new", "waiting"]


def test_a_failed_or_deleted_run_wakes_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _woken(monkeypatch, event="MODIFIED", phase="RolledBack") == ["new", "waiting"]
    assert _woken(monkeypatch, event="DELETED", phase="Migrating") == ["new", "waiting"]


def test_a_run_still_going_wakes_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _woken(monkeypatch, event="MODIFIED", phase="Migrating") == []


@pytest.mark.parametrize(
    ("limit", "woken"), [(2, ["elsewhere", "new", "waiting"]), (4, ["elsewhere", "new", "waiting", "young"])]
)
def test_a_run_that_ends_wakes_runs_waiting_for_a_slot(
    monkeypatch: pytest.MonkeyPatch, limit: int, woken: list[str]
) -> None:
    """busy holds one slot; the oldest first-in-line runs fill what the limit leaves (young: another namespace).
    behind-busy waits for its database and failing for its retry: neither is woken."""
    assert _woken(monkeypatch, event="MODIFIED", phase="Succeeded", limit=limit) == woken


def test_a_run_that_waits_for_an_approval_frees_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _woken(monkeypatch, event="MODIFIED", phase="AwaitingApproval", limit=2) == ["elsewhere"]


def test_with_a_limit_a_run_still_going_wakes_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _woken(monkeypatch, event="MODIFIED", phase="Migrating", limit=10) == []
