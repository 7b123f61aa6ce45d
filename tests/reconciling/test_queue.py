"""One run at a time per database: queueing and its order."""

from datetime import timedelta

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import RunSummary, find_blocker

from .world import NOW, World, condition


def test_a_blocked_run_is_queued_with_the_blocker_named_and_one_event():
    world = World()
    first = world.tick(blocked_by="shop-1-4-1")
    second = world.tick(blocked_by="shop-1-4-1")
    assert world.phase == Phase.QUEUED
    assert world.status.queue.blocked_by == "shop-1-4-1"
    assert "queued behind run shop-1-4-1" in world.status.message
    assert [e.reason for e in first.events] == [EventReason.QUEUED]
    assert second.events == [] and second.creates == []
    assert condition(world.status, "Reconciling").reason == "Queued"


def test_a_queued_run_starts_once_unblocked():
    world = World()
    world.tick(blocked_by="older")
    decision = world.tick(blocked_by=None)
    assert world.phase == Phase.PLANNING
    assert world.status.queue is None
    assert [c.step for c in decision.creates] == ["plan"]


def test_a_started_run_ignores_a_blocker():
    world = World()
    world.run_to(Phase.BACKING_UP)
    decision = world.tick(blocked_by="someone-else")
    assert world.phase == Phase.BACKING_UP
    assert decision.events == []


def summary(name, minutes, phase=None, database="db"):
    return RunSummary(name=name, database=database, creation_timestamp=NOW + timedelta(minutes=minutes), phase=phase)


def test_runs_on_one_database_start_in_creation_order():
    others = [summary("a", 0), summary("b", 1), summary("c", 2)]
    assert find_blocker(name="a", database="db", creation_timestamp=NOW, others=others) == (None, None)
    assert find_blocker(name="b", database="db", creation_timestamp=NOW + timedelta(minutes=1), others=others) == (
        "a",
        1,
    )
    assert find_blocker(name="c", database="db", creation_timestamp=NOW + timedelta(minutes=2), others=others) == (
        "a",
        2,
    )


def test_a_started_run_blocks_even_an_earlier_created_one():
    others = [summary("late", 5, Phase.MIGRATING)]
    assert find_blocker(name="early", database="db", creation_timestamp=NOW, others=others) == ("late", 1)


def test_finished_runs_and_other_databases_do_not_block():
    others = [
        summary("done", -5, Phase.SUCCEEDED),
        summary("failed", -4, Phase.ROLLED_BACK),
        summary("elsewhere", -3, Phase.MIGRATING, database="other"),
    ]
    assert find_blocker(name="me", database="db", creation_timestamp=NOW, others=others) == (None, None)


def test_runs_created_in_the_same_second_are_ordered_by_name():
    others = [summary("a", 0), summary("b", 0)]
    assert find_blocker(name="b", database="db", creation_timestamp=NOW, others=others) == ("a", 1)
    assert find_blocker(name="a", database="db", creation_timestamp=NOW, others=others) == (None, None)
