"""Which step Jobs of an ended run the operator deletes, and when (``reconciler.cleanup``).

An ended run's status holds every result, so its Jobs (and by owner reference their Pods and logs)
go ``JobSettings.retain_seconds`` after the run ended; at 1,000 runs one node otherwise held 3,450
finished Pods (issue 18). A failed step's Job stays while ``retain_failed``: its log says why.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import JobObservation, Observed, PodObservation, cleanup
from alembic_operator.controller.settings import JobSettings

from .world import BACKUP_DATA, World

DEFAULT = JobSettings()


def due(world: World, *, after: float, settings: JobSettings = DEFAULT) -> list[str]:
    assert world.status.finished_at is not None
    now = world.status.finished_at + timedelta(seconds=after)
    return cleanup.due(status=world.status, observed=Observed(jobs=dict(world.jobs)), now=now, settings=settings)


def succeeded_run() -> World:
    world = World()
    world.run_to(Phase.SUCCEEDED)
    return world


def rolled_back_run() -> World:
    """The migration failed with changes and the restore succeeded: migrate's Job failed, restore's did not."""
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.tick()
    world.finish("restore", data={"uri": BACKUP_DATA["uri"]})
    world.tick()
    assert world.phase == Phase.ROLLED_BACK
    return world


def test_a_succeeded_runs_jobs_go_once_retain_seconds_have_passed_since_it_ended_and_not_before():
    world = succeeded_run()
    steps = ("plan", "backup", "migrate", "verify")
    assert DEFAULT.retain_seconds == 300
    assert due(world, after=0) == [] and due(world, after=299) == []
    assert due(world, after=300) == sorted(world.job(step) for step in steps)


def test_with_retain_seconds_zero_they_go_as_soon_as_the_run_ended():
    world = succeeded_run()
    assert len(due(world, after=0, settings=JobSettings(retain_seconds=0))) == 4


def test_forever_keeps_every_job_until_the_run_is_deleted():
    assert due(succeeded_run(), after=10**9, settings=JobSettings(retain_seconds=None)) == []


def test_a_failed_steps_job_stays_for_its_log_and_the_others_go():
    world = rolled_back_run()
    assert due(world, after=300) == sorted(world.job(step) for step in ("plan", "backup", "restore"))
    everything = due(world, after=300, settings=JobSettings(retain_failed=False))
    assert world.job("migrate") in everything and len(everything) == 4


def test_a_job_that_exited_zero_for_a_step_recorded_failed_stays_too():
    """A verification that found violations may still have exited 0: its step's record says Failed."""
    world = succeeded_run()
    verify = world.status.steps.verify
    assert verify is not None
    world.status.steps.put("verify", verify.model_copy(update={"outcome": "Failed"}))
    assert world.job("verify") not in due(world, after=300)


def test_an_unfinished_run_keeps_every_job_however_old():
    world = World()
    world.run_to(Phase.VERIFYING)
    world.run.status.finished_at = world.status.started_at  # even with a stray end time
    assert due(world, after=10**6) == []


def test_a_job_that_may_still_run_or_is_already_being_deleted_is_left_alone():
    world = succeeded_run()
    plan, backup, migrate = world.job("plan"), world.job("backup"), world.job("migrate")
    world.jobs[plan] = dataclasses.replace(world.jobs[plan], deleting=True)
    world.jobs[backup] = JobObservation(name=backup, active=1, pod=PodObservation(phase="Running"))
    world.jobs[migrate] = JobObservation(name=migrate)  # created, never started, never ended
    assert due(world, after=300) == [world.job("verify")]


def test_only_the_runs_own_observed_jobs_are_named():
    """Observed holds only Jobs the run controls (observing.observed_jobs checks the owner's uid)."""
    world = succeeded_run()
    world.jobs = {}
    assert due(world, after=300) == []
