"""Operator-wide periodic work over the runs index: one task per job, not one Kopf timer per run.

A Kopf timer or daemon on MigrationRuns makes Kopf keep, for every run it ever served, the whole
object as the watch last delivered it (its ``live_fresh_body``: managedFields, annotations, the
full status — about 74 KiB a run, against 21 KiB slim), and a filter that stops the timer on a
finished run does not free it. With 1,000 runs that alone is ~70 MiB of the operator's memory
(issue 18's line is 200 MiB), and the timers also made Kopf add and remove its own finalizer on
every run. The safety net and the progress poll therefore run as one loop each, started by a
Kopf start-up handler, walking the slim runs the operator's index already holds
(:mod:`.indexes`).

Must not: decide anything or call the API (the ticks passed in do that), or keep state of its
own beyond the loops' tasks, which live in the operator's memo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol

from alembic_operator.api import model
from alembic_operator.controller.indexes import RunKey

log = logging.getLogger(__name__)

Tick = Callable[[], Awaitable[None]]


class HoldsTasks(Protocol):
    """The operator's memo as this module uses it: where the loops' tasks live (so they are not collected)."""

    background: list[asyncio.Task[None]]


def runs(index: Mapping[RunKey, Any] | None) -> Iterator[tuple[RunKey, Mapping[str, Any]]]:
    """Each run of a Kopf index of slim runs (one per key) with its key; a snapshot, safe while Kopf adds runs."""
    for key, store in list((index or {}).items()):
        for run in list(store):
            yield key, run


def unfinished(run: Mapping[str, Any]) -> bool:
    """Not yet in a terminal phase, or being deleted (its deletion path still has work to do)."""
    meta = run.get("metadata") or {}
    phase = (run.get("status") or {}).get("phase")
    return phase not in model.TERMINAL_PHASE_VALUES or bool(meta.get("deletionTimestamp"))


async def every(seconds: float, tick: Tick, *, what: str) -> None:
    """Call ``tick`` every ``seconds`` until cancelled; a tick that raises is logged and the loop goes on."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await tick()
        except Exception:  # the next tick may well succeed: a loop that died would stop the work for good
            log.exception("%s: a pass failed; the next one is in %.0fs", what, seconds)


def start(memo: HoldsTasks, seconds: float, tick: Tick, *, what: str) -> None:
    """Run :func:`every` in the background for the operator's lifetime (asyncio cancels it at exit)."""
    memo.background.append(asyncio.create_task(every(seconds, tick, what=what), name=what))
