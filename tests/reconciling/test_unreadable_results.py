"""A result the operator cannot read fails its step, and the run goes on as for any failure of that step.

Whatever a step leaves in its termination message — a mistyped field, a list
where the data should be, a text that is not JSON — the reconcile never raises
(which would make Kopf retry it forever): the step ends Failed with reason
UnreadableResult and a message naming the problem. A plan or backup then ends
the run Failed (nothing changed), a migrate, verify or drift check rolls back
(the database may have changed; the drift check runs after the migration
committed), a restore ends RollbackFailed (never retried: it is not known to
have changed nothing). A rehearsal step's (prepare, or the copy's migrate or
verify) fails the rehearsal: the copy is dropped and the run ends Failed, the
database untouched; an unreadable drop is a failed drop, tried again, then
named as left. An unreadable downgrade (``rollback.method: downgrade``) is a
failed one: the restore follows. The wait step is no step of a run (the app's init container
runs it): the operator never reads its result.
"""

import dataclasses
import json

import pytest

from alembic_operator.api import termination
from alembic_operator.api.model import Phase

from . import test_downgrade as downgrade
from . import test_rehearsal as rehearsal
from .world import BACKUP_DATA, MIGRATE_DATA, NOW, VERIFY_DATA, World, condition, failed, make_spec, succeeded

#: Where each step's failure leads, and the phase the run is in while the step runs.
AFTER_FAILURE = {
    "plan": (Phase.PLANNING, Phase.FAILED),
    "backup": (Phase.BACKING_UP, Phase.FAILED),
    "migrate": (Phase.MIGRATING, Phase.ROLLING_BACK),
    "verify": (Phase.VERIFYING, Phase.ROLLING_BACK),
    "drift": (Phase.VERIFYING, Phase.ROLLING_BACK),
    "restore": (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED),
}
DATA = {
    "plan": {"statements": 1},
    "backup": BACKUP_DATA,
    "migrate": MIGRATE_DATA,
    "verify": {"tablesChecked": 4},
    "drift": {"policy": "warn", "differences": []},
    "restore": {"uri": "s3://b/x/dump.pgdump"},
    "downgrade": downgrade.DOWNGRADED,
    "rehearse": rehearsal.PREPARE_DATA,  # rehearse prepare's; the copy's migrate and verify leave those steps'
}


def _envelope(step: str, **over: object) -> str:
    return json.dumps({**termination.build(step=step, ok=True, message="done", data=DATA[step]), **over})


#: Results that are JSON but not one of ours, and what the message says about them.
MALFORMED = {
    "message is a number": (lambda step: _envelope(step, message=5), "message"),
    "data is a list": (lambda step: _envelope(step, data=[]), "data"),
    "not JSON": (lambda step: "{Traceback (most recent call last): ...", "not JSON"),
}


def _at(step: str) -> World:
    """A default run whose ``step`` Job runs (for the restore: after a failed migration; for the drift
    check, under ``verify.drift: warn``, after a passed verification)."""
    world = World(make_spec(verify={"drift": "warn"})) if step == "drift" else World()
    if step == "drift":
        world.run_to(Phase.VERIFYING)
        world.finish("verify", data=VERIFY_DATA)
        world.tick()
    elif step == "restore":
        world.run_to(Phase.MIGRATING)
        world.finish("migrate", ok=False, message="boom", changed=True)
        world.tick()
    else:
        world.run_to(AFTER_FAILURE[step][0])
    assert world.phase == AFTER_FAILURE[step][0]
    return world


def _leaving(job, text):
    """``job`` (a JobObservation) with ``text`` as its pod's termination message."""
    return dataclasses.replace(job, pod=dataclasses.replace(job.pod, termination_message=text))


def _settled(world: World) -> None:
    """Reconcile until nothing changes; every reconcile returns (none raises)."""
    for _ in range(3):
        world.tick()


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize("job_ok", [True, False], ids=["job-succeeded", "job-failed"])
@pytest.mark.parametrize("step", AFTER_FAILURE)
def test_a_malformed_result_fails_the_step_and_the_run_goes_on_as_for_its_failure(step, job_ok, kind):
    make, named = MALFORMED[kind]
    world = _at(step)
    name = world.job(step)
    job = succeeded(name, step) if job_ok else failed(name, step)
    world.jobs[name] = _leaving(job, make(step))
    _settled(world)
    assert world.phase == AFTER_FAILURE[step][1]
    record = world.status.steps.get(step)
    assert record.outcome == "Failed" and record.retry is not True
    assert record.reason == "UnreadableResult"
    assert f"the {step} step left an unreadable result" in record.message and named in record.message


@pytest.mark.parametrize("step", AFTER_FAILURE)
def test_a_failed_step_whose_message_is_its_log_tail_reports_the_exit_code_and_the_tail(step):
    world = _at(step)
    world.finish(step, ok=False, raw="psycopg.OperationalError: connection refused")
    _settled(world)
    assert world.phase == AFTER_FAILURE[step][1]
    record = world.status.steps.get(step)
    assert record.reason == "StepFailed"
    assert record.message == f"the {step} container exited with code 1: psycopg.OperationalError: connection refused"


def test_a_step_of_another_name_in_the_result_is_unreadable_not_trusted():
    world = _at("backup")
    name = world.job("backup")
    world.jobs[name] = dataclasses.replace(succeeded(name, "verify", {"tablesChecked": 4}), start_time=NOW)
    _settled(world)
    assert world.phase == Phase.FAILED
    assert "not 'backup'" in world.status.steps.backup.message
    assert condition(world.status, "BackedUp").reason == "UnreadableResult"


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize("failing", [step for step, _ in rehearsal.PASSING])
def test_a_malformed_rehearsal_result_fails_the_rehearsal_which_drops_its_copy_and_leaves_the_database(failing, kind):
    make, named = MALFORMED[kind]
    world = rehearsal.rehearsing_world()
    world.tick()
    for step, data in rehearsal.PASSING[: [s for s, _ in rehearsal.PASSING].index(failing)]:
        rehearsal.end(world, step, data=data)
        world.tick()
    name = world.job(failing)
    world.jobs[name] = _leaving(succeeded(name, rehearsal.RESULT_OF[failing]), make(rehearsal.RESULT_OF[failing]))
    world.tick()
    assert rehearsal.created(world)[-1] == "rehearse-drop"  # the copy is dropped first, always
    rehearsal.end(world, "rehearse-drop", data=rehearsal.DROP_DATA)
    _settled(world)
    assert world.phase == Phase.FAILED
    record = world.status.steps.get(failing)
    assert record.outcome == "Failed" and record.reason == "UnreadableResult" and named in record.message
    assert world.status.message.endswith("the database was not touched")
    assert not {"migrate", "verify", "restore"} & set(rehearsal.created(world))  # nothing ran on the real one


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_drop_result_is_a_failed_drop_tried_again_then_named_as_left_and_the_run_migrates(kind):
    make, named = MALFORMED[kind]
    world = rehearsal.rehearsing_world()
    rehearsal.rehearse_to_the_drop(world)
    for _ in range(world.settings.reconcile.max_attempts):
        name = world.job("rehearse-drop")
        world.jobs[name] = _leaving(succeeded(name, "rehearse"), make("rehearse"))
        world.tick()
    assert rehearsal.created(world).count("rehearse-drop") == world.settings.reconcile.max_attempts
    record = world.status.steps.rehearse_drop
    assert record.reason == "UnreadableResult" and named in record.message
    assert world.status.rehearsal.dropped is False  # named as left (a Warning Event), never taken for dropped
    assert world.phase == Phase.MIGRATING  # as after any failed drop of a passed rehearsal


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_downgrade_result_is_a_failed_downgrade_and_the_restore_follows(kind):
    make, named = MALFORMED[kind]
    world = downgrade.failed_migration()
    name = world.job("downgrade")
    world.jobs[name] = _leaving(succeeded(name, "downgrade"), make("downgrade"))
    _settled(world)
    record = world.status.steps.downgrade
    assert record.reason == "UnreadableResult" and named in record.message
    assert world.status.rollback.used == "restore" and world.status.rollback.downgrade == "Failed"
    assert world.phase == Phase.ROLLING_BACK and downgrade.created(world)[-1] == "restore"
