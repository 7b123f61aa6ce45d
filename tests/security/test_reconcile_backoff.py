"""A reconcile that keeps raising (finding 4) backs off exponentially and never loops hot.

The handlers' own coalescing and scheduling run on a real event loop; only the blocking
read-decide-apply pass is replaced by one that raises, as a malformed object once made it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alembic_operator.controller import handlers

KEY = ("shop", "run-1")


def test_the_retry_delay_doubles_up_to_five_minutes() -> None:
    assert [handlers.retry_delay(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_a_run_whose_reconcile_raises_is_retried_only_by_its_backoff_in_five_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def raising(*_: Any) -> float:
            calls.append(loop.time())
            raise RuntimeError("malformed")

        monkeypatch.setattr(handlers, "_reconcile_blocking", raising)
        memo = handlers.ControllerMemo()
        await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1])
        for _ in range(50):  # Job, Pod and safety-net wake-ups while it backs off
            await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1])
        first = memo.timers[KEY].when() - loop.time()
        retries = 0
        simulated = first
        while simulated <= 300:  # each scheduled retry, as its timer would fire it
            await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1], urgent=True)
            retries += 1
            simulated += memo.timers[KEY].when() - loop.time()
        for timer in memo.timers.values():
            timer.cancel()
        return {"first": first, "failures": memo.failures[KEY], "retries": retries}

    outcome = asyncio.run(scenario())
    assert 4.5 < outcome["first"] <= 5.0
    assert len(calls) == 1 + outcome["retries"] == outcome["failures"]
    assert len(calls) <= 10  # issue 14: at most 10 reconciles of the run in the 5 minutes after
    assert outcome["retries"] == 5  # at 5, 15, 35, 75 and 155 s; the next is at 315 s


def test_one_pass_that_does_not_raise_ends_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[Any] = [RuntimeError("malformed"), None, None]

    def flaky(*_: Any) -> float | None:
        outcome = results.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return None

    async def scenario() -> handlers.ControllerMemo:
        monkeypatch.setattr(handlers, "_reconcile_blocking", flaky)
        memo = handlers.ControllerMemo()
        await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1])
        await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1], urgent=True)
        await handlers.reconcile_run(memo, namespace=KEY[0], name=KEY[1])  # an ordinary event: not held back
        for timer in memo.timers.values():
            timer.cancel()
        return memo

    memo = asyncio.run(scenario())
    assert results == [] and memo.failures == {} and memo.retry_at == {}
