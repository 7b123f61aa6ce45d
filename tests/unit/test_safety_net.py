"""The safety net is one loop over the runs index (issue 18), not a Kopf timer per run: it reconciles
each unfinished run that has been quiet for a minute and no other run.

The handlers' scheduling runs on a real event loop; the blocking read-decide-apply pass is replaced
by one that records which runs it was asked for."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alembic_operator.api import constants
from alembic_operator.controller import handlers

NS = "shop"


def _run(name: str, phase: str | None, *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T00:00:00Z"
        meta["finalizers"] = [constants.FINALIZER]
    return {"metadata": meta, "spec": {}, "status": {"phase": phase} if phase else {}}


def test_only_unfinished_runs_quiet_for_a_minute_without_a_pending_recheck_are_reconciled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reconciled: list[str] = []

    def record(_memo: Any, _namespace: str, name: str, *_: Any) -> None:
        reconciled.append(name)
        return None

    async def scenario() -> None:
        monkeypatch.setattr(handlers, "_reconcile_blocking", record)
        loop = asyncio.get_running_loop()
        memo = handlers.ControllerMemo()
        runs = {
            "quiet": _run("quiet", "Migrating"),
            "never-seen": _run("never-seen", None),
            "just-reconciled": _run("just-reconciled", "BackingUp"),
            "has-recheck": _run("has-recheck", "Queued"),
            "succeeded": _run("succeeded", "Succeeded"),
            "deleting": _run("deleting", "Failed", deleting=True),
        }
        memo.indexes.runs = {(NS, name): [run] for name, run in runs.items()}  # type: ignore[assignment]
        memo.last_reconciled[(NS, "quiet")] = loop.time() - handlers.SAFETY_NET_SECONDS - 1
        memo.last_reconciled[(NS, "just-reconciled")] = loop.time() - 5
        memo.timers[(NS, "has-recheck")] = loop.call_later(30, lambda: None)
        await handlers._safety_net(memo)
        for timer in memo.timers.values():
            timer.cancel()

    asyncio.run(scenario())
    assert sorted(reconciled) == ["deleting", "never-seen", "quiet"]
