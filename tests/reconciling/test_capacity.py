"""At most ``max_running_runs`` runs run a step at once, operator-wide (issue 18: 100 step containers on a
2-core node starved each other past their deadlines). Who is ahead is pure logic over the index's
summaries; what a waiting run's status says is the reconciler's."""

from datetime import timedelta

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import Capacity, RunSummary, measure_capacity, next_to_start

from .world import NOW, World


def run(name, minutes, phase=None, database=None, namespace="shop"):
    return RunSummary(
        name=name,
        database=database or f"db-{name}",
        creation_timestamp=NOW + timedelta(minutes=minutes),
        phase=phase,
        namespace=namespace,
    )


def capacity_of(me, others, limit):
    return measure_capacity(
        name=me.name, namespace=me.namespace, creation_timestamp=me.creation_timestamp, others=others, limit=limit
    )


# ---------------------------------------------------------------- who is ahead


def test_runs_with_a_step_running_fill_the_slots_and_waiting_for_a_person_holds_none():
    others = [
        run("plan", 0, Phase.PLANNING),
        run("migrate", 0, Phase.MIGRATING),
        run("restore", 0, Phase.ROLLING_BACK),
        run("approval", 0, Phase.AWAITING_APPROVAL),
        run("held", 0, Phase.ROLLBACK_HELD),
        run("done", 0, Phase.SUCCEEDED),
        run("failed", 0, Phase.ROLLBACK_FAILED),
    ]
    me = run("me", 5)
    assert capacity_of(me, others, limit=3) == Capacity(limit=3, running=3, ahead=0)
    assert capacity_of(me, others, limit=3).full
    assert not capacity_of(me, others, limit=4).full


def test_older_first_in_line_runs_of_other_databases_go_first_and_younger_ones_do_not_count():
    others = [
        run("older", 1),
        run("older-queued", 2, Phase.QUEUED),
        run("younger", 9),
        run("running", 0, Phase.BACKING_UP),
    ]
    me = run("me", 5)
    cap = capacity_of(me, others, limit=3)
    assert (cap.running, cap.ahead, cap.full) == (1, 2, True)
    assert not capacity_of(me, others, limit=4).full


def test_a_run_queued_behind_another_on_its_database_is_not_ahead_of_anyone():
    others = [
        run("busy", 0, Phase.MIGRATING, database="shared"),
        run("behind-busy", 1, Phase.QUEUED, database="shared"),  # waits for its database, not for a slot
        run("second-on-db", 2, Phase.QUEUED, database="two"),
        run("first-on-db", 3, Phase.QUEUED, database="two"),  # created later, but two's line is by age: not it
    ]
    cap = capacity_of(run("me", 5), others, limit=10)
    assert (cap.running, cap.ahead) == (1, 1)


def test_namespaces_share_the_limit_and_break_ties_of_the_same_second():
    others = [
        run("a", 0, namespace="alpha"),
        run("a", 0, namespace="beta"),
        run("b", 0, Phase.VERIFYING, namespace="gamma"),
    ]
    assert capacity_of(run("a", 0, namespace="beta"), others, limit=10) == Capacity(limit=10, running=1, ahead=1)
    assert capacity_of(run("a", 0, namespace="alpha"), others, limit=10) == Capacity(limit=10, running=1, ahead=0)


def test_a_freed_slot_wakes_the_oldest_first_in_line_runs_as_many_as_fit():
    runs = [
        run("running", 0, Phase.MIGRATING),
        run("third", 3, Phase.QUEUED),
        run("first", 1, Phase.QUEUED),
        run("second", 2),
        run("behind", 0, Phase.QUEUED, database="db-running"),  # its database is busy
        run("approval", 0, Phase.AWAITING_APPROVAL),
    ]
    assert next_to_start(runs, limit=3) == [("shop", "first"), ("shop", "second")]
    assert next_to_start(runs, limit=1) == []
    assert next_to_start(runs, limit=10) == [("shop", "first"), ("shop", "second"), ("shop", "third")]


def test_two_runs_woken_by_one_slot_cannot_both_take_it():
    """Each sees the other as running or as ahead of it in the index, whichever it is at that moment."""
    waiting = [run("old", 1, Phase.QUEUED), run("young", 2, Phase.QUEUED), run("busy", 0, Phase.VERIFYING)]
    assert not capacity_of(waiting[0], waiting, limit=2).full  # old takes the slot...
    assert capacity_of(waiting[1], waiting, limit=2).full  # ...young sees old ahead of it
    started = [run("old", 1, Phase.PLANNING), *waiting[1:]]
    assert capacity_of(waiting[1], started, limit=2).full  # ...and running once it started


# ---------------------------------------------------------------- what the run says


def test_a_run_past_the_limit_is_queued_saying_why_with_one_event_and_no_job():
    world = World()
    first = world.tick(capacity=Capacity(limit=10, running=10, ahead=2))
    stored = world.status.model_copy(deep=True)
    world.advance(15)  # its next re-check
    again = world.tick(capacity=Capacity(limit=10, running=9, ahead=4))  # the line moved; still full
    assert world.phase == Phase.QUEUED
    assert world.status.queue.limit == 10 and world.status.queue.blocked_by is None
    assert world.status.message == (
        "queued: the operator's limit of runs at once (maxRunningRuns: 10) is reached; "
        "this run starts when a slot frees, oldest first"
    )
    assert [e.message for e in first.events] == [
        "waiting for a free slot: 10 runs are running, at most 10 at once (the operator's maxRunningRuns); "
        "2 waiting runs go first"
    ]
    assert again.events == [] and again.creates == [] and first.creates == []
    assert world.status == stored  # re-checks of a long line write nothing


def test_a_run_queued_on_its_database_then_for_a_slot_says_so_in_a_new_event():
    world = World()
    world.tick(blocked_by="older")
    decision = world.tick(capacity=Capacity(limit=1, running=1, ahead=0))
    assert world.status.queue.blocked_by is None and world.status.queue.limit == 1
    assert [e.reason for e in decision.events] == [EventReason.QUEUED]


def test_a_slot_frees_and_the_run_starts_its_plan():
    world = World()
    world.tick(capacity=Capacity(limit=1, running=1, ahead=0))
    decision = world.tick(capacity=Capacity(limit=1, running=0, ahead=0))
    assert world.phase == Phase.PLANNING and world.status.queue is None
    assert [c.step for c in decision.creates] == ["plan"]


def test_a_started_run_never_waits_for_a_slot():
    """Past Queued, a full operator changes nothing: a fenced application must not stay down waiting."""
    world = World()
    world.run_to(Phase.BACKING_UP)
    decision = world.tick(capacity=Capacity(limit=1, running=5, ahead=3))
    assert world.phase == Phase.BACKING_UP and decision.events == []
