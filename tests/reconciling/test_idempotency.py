"""Reconciling is idempotent and survives an operator killed at any instant (safety rule 5)."""

import pytest

from alembic_operator.api import model
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import Observed, reconcile

from .world import BACKUP_DATA, MIGRATE_DATA, World, running

PHASES = [Phase.PLANNING, Phase.BACKING_UP, Phase.MIGRATING, Phase.VERIFYING, Phase.SUCCEEDED]


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
def test_reconciling_the_same_inputs_twice_gives_the_same_decision(phase):
    world = World()
    world.run_to(phase)
    assert world.decide() == world.decide()


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
def test_reconciling_the_written_status_again_changes_nothing_and_creates_nothing(phase):
    world = World()
    world.run_to(phase)
    before = world.status
    decision = world.tick()
    assert decision.creates == [] and decision.events == [] and decision.deletes == []
    assert world.status == before


@pytest.mark.parametrize("phase", PHASES[:-1], ids=lambda p: p.value)
def test_a_restarted_operator_finds_the_recorded_job_and_creates_nothing(phase):
    world = World()
    world.run_to(phase)
    # A new operator process: same stored status, Jobs listed from the API.
    world.advance(600 if phase != Phase.PLANNING else 100)
    decision = world.tick()
    assert decision.creates == []


@pytest.mark.parametrize(
    "step_done,next_phase", [("plan", Phase.BACKING_UP), ("backup", Phase.MIGRATING), ("migrate", Phase.VERIFYING)]
)
def test_a_crash_after_creating_a_job_and_before_writing_status_does_not_duplicate_it(step_done, next_phase):
    world = World()
    world.run_to({"plan": Phase.PLANNING, "backup": Phase.BACKING_UP, "migrate": Phase.MIGRATING}[step_done])
    world.finish(step_done, data={"plan": {"statements": 1}, "backup": BACKUP_DATA, "migrate": MIGRATE_DATA}[step_done])
    first = world.decide()
    [create] = first.creates
    world.jobs[create.name] = running(create.name, at=world.now)  # the create went through; the patch did not
    world.advance(5)
    second = world.decide()  # the old status again
    assert second.creates == []
    assert second.status.phase == next_phase
    assert second.status.steps.get(create.step).job == create.name


def test_a_migrate_job_recorded_but_never_created_counts_as_vanished_after_the_grace_window():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.finish("backup", data=BACKUP_DATA)
    world.tick(create=False)  # status written, create lost (the reverse apply order)
    world.advance(10)
    assert world.tick().creates == []  # still within the grace window
    world.advance(25)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK  # never re-run a migration blindly


def test_a_status_written_through_json_reads_back_equal():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    assert model.parse_status(model.dump(world.status)) == world.status


def test_the_clock_is_truncated_to_seconds_so_repeated_reconciles_agree():
    world = World()
    world.now = world.now.replace(microsecond=123456)
    world.tick()
    assert world.status.started_at.microsecond == 0
    assert all(c.last_transition_time.microsecond == 0 for c in world.status.conditions)


def test_the_reconciler_does_not_modify_its_input_status():
    world = World()
    world.run_to(Phase.MIGRATING)
    snapshot = world.status.model_copy(deep=True)
    reconcile(run=world.run, observed=Observed(jobs={}), now=world.now)
    assert world.status == snapshot
