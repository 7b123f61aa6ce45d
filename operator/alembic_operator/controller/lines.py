"""Which waiting runs a change lets start, read from Kopf's index of runs: the queue's wake-ups.

A run waiting on its database (:func:`next_on_database`) or for the operator-wide limit of
runs running at once (:func:`next_for_slot`) re-checks every ``queued_poll_seconds``; the
handler wakes the ones these name at once instead, when a run ends, goes, or stops holding
a slot (waits for a person).

Must not: decide whether a run starts (:mod:`.reconciler.queue` does, for each woken run) or
call the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from alembic_operator.api import model
from alembic_operator.controller import observing, reconciler
from alembic_operator.controller.indexes import RunKey

RunIndex = kopf.Index[tuple[str, str], reconciler.RunSummary]
"""Kopf's live index of runs: (namespace, database label) → summaries of its runs."""

WAITING = (model.Phase.PENDING, model.Phase.QUEUED)
"""Phases of a run that has not started (no phase yet counts as Pending)."""

HOLDING_NO_SLOT = frozenset(
    phase.value
    for phase in model.Phase
    if phase not in model.TERMINAL_PHASES and phase not in reconciler.WORKING_PHASES and phase not in WAITING
)
"""Unfinished phases of a started run that holds no slot of the limit (it waits for a person: AwaitingApproval,
RollbackHeld); derived from the queue's ``WORKING_PHASES`` so the two cannot disagree."""


def summaries(index: RunIndex | None, namespace: str | None = None) -> list[reconciler.RunSummary]:
    """Every run's summary in the index, or those of one namespace."""
    found: list[reconciler.RunSummary] = []
    for (ns, _database), store in list((index or {}).items()):
        if namespace is None or ns == namespace:
            found.extend(store)
    return found


def next_on_database(
    index: RunIndex | None, namespace: str, body: Mapping[str, Any], retry_at: Mapping[RunKey, float], now: float
) -> list[str]:
    """The runs waiting on the same database as ``body`` (not started, not waiting out a retry): when
    ``body`` ends or goes, one of them goes first now, rather than at its next ``queued_poll_seconds``."""
    ended = observing.run_summary(body)
    if ended is None or index is None:
        return []
    return [
        other.name
        for other in list(index.get((namespace, ended.database), ()))
        if other.name != ended.name
        and other.phase in (None, *WAITING)
        and now >= retry_at.get((namespace, other.name), 0.0)
    ]


def next_for_slot(index: RunIndex | None, limit: int, retry_at: Mapping[RunKey, float], now: float) -> list[RunKey]:
    """The runs that free slots of the limit let start now, oldest first (not those waiting out a retry)."""
    if index is None:
        return []
    return [key for key in reconciler.next_to_start(summaries(index), limit) if now >= retry_at.get(key, 0.0)]
