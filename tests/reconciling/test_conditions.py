"""kstatus conditions at each phase (what Flux, Argo CD and kstatus read)."""

import dataclasses

import pytest

from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import reject

from .world import BACKUP_DATA, NOW, World, condition


def kstatus(status):
    return {t: condition(status, t).status for t in ("Ready", "Reconciling", "Stalled")}


def test_the_first_reconcile_sets_reconciling_and_not_ready():
    world = World()
    world.tick()
    assert kstatus(world.status) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}
    assert world.status.observed_generation == 1
    assert all(c.observed_generation == 1 for c in world.status.conditions)


@pytest.mark.parametrize(
    "phase", [Phase.PLANNING, Phase.BACKING_UP, Phase.MIGRATING, Phase.VERIFYING], ids=lambda p: p.value
)
def test_running_phases_are_reconciling_with_the_phase_as_reason(phase):
    world = World()
    world.run_to(phase)
    assert kstatus(world.status) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}
    assert condition(world.status, "Reconciling").reason == phase.value


def test_only_a_succeeded_run_is_ready():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    assert kstatus(world.status) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    for type in ("Planned", "BackedUp", "Migrated", "Verified"):
        assert condition(world.status, type).status == "True"


def test_a_failed_run_is_stalled_with_a_reason():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.finish("backup", ok=False, message="no space")
    world.tick()
    assert kstatus(world.status) == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    assert condition(world.status, "Stalled").reason == "BackupFailed"
    assert condition(world.status, "Ready").message == world.status.message
    assert condition(world.status, "Stalled").message == "phase Failed; the Ready condition says why"
    assert condition(world.status, "Reconciling").message == ""


def test_conditions_keep_a_fixed_order_with_the_kstatus_ones_first():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    assert [c.type for c in world.status.conditions] == [
        "Ready",
        "Reconciling",
        "Stalled",
        "Planned",
        "BackedUp",
        "Migrated",
        "Verified",
    ]


def _ended_in(outcome):
    world = World()
    if outcome == "succeeded":
        world.run_to(Phase.SUCCEEDED)
    elif outcome == "backup-failed":
        world.run_to(Phase.BACKING_UP)
        world.finish("backup", ok=False, message="no space")
        world.tick()
    elif outcome == "rolled-back":
        world.run_to(Phase.MIGRATING)
        world.finish("migrate", ok=False, message="duplicate column", changed=True)
        world.tick()
        world.finish("restore", data={"uri": BACKUP_DATA["uri"]})
        world.tick()
    else:
        world.run_to(Phase(outcome))
    return world


@pytest.mark.parametrize("outcome", ["Planning", "BackingUp", "succeeded", "backup-failed", "rolled-back"])
def test_describe_shows_each_condition_message_once(outcome):
    """kubectl describe lists every condition's message: Ready, Reconciling and Stalled must not say the
    run's message three times (only Ready carries it; the other two name the phase or say nothing)."""
    world = _ended_in(outcome)
    trio = [condition(world.status, t).message for t in ("Ready", "Reconciling", "Stalled")]
    assert trio[0] == world.status.message
    shown = [m for m in trio if m]
    assert len(shown) == len(set(shown)) and trio.count(world.status.message) == 1, trio


def test_a_running_step_has_an_unknown_step_condition():
    world = World()
    world.run_to(Phase.MIGRATING)
    migrated = condition(world.status, "Migrated")
    assert migrated.status == "Unknown" and migrated.reason == "InProgress"


def test_last_transition_time_changes_only_when_the_status_flips():
    world = World()
    world.tick()
    ready_since = condition(world.status, "Ready").last_transition_time
    reconciling_since = condition(world.status, "Reconciling").last_transition_time
    world.advance(60)
    world.finish("plan", data={"statements": 1})
    world.tick()  # Planning → BackingUp: still Reconciling, still not Ready
    assert condition(world.status, "Ready").last_transition_time == ready_since
    assert condition(world.status, "Reconciling").last_transition_time == reconciling_since
    assert condition(world.status, "Reconciling").reason == "BackingUp"


def test_observed_generation_follows_the_run_generation():
    world = World()
    world.tick()
    world.run = dataclasses.replace(world.run, generation=2)
    world.tick()
    assert world.status.observed_generation == 2
    assert {c.observed_generation for c in world.status.conditions} == {2}


def test_an_invalid_spec_fails_the_run_with_a_warning_and_creates_nothing():
    from alembic_operator.api.model import MigrationRunStatus

    decision = reject(status=MigrationRunStatus(), generation=1, message="spec.migrate.image: Field required", now=NOW)
    assert decision.status.phase == Phase.FAILED
    assert decision.status.message == "invalid spec: spec.migrate.image: Field required"
    assert condition(decision.status, "Stalled").reason == "InvalidSpec"
    assert [e.type for e in decision.events] == ["Warning"]
    assert decision.creates == []
