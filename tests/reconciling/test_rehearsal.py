"""The rehearsal on a scratch copy (spec.rehearsal), decided by the pure reconciler.

After the backup the run rehearses: the scratch database's name is stored in
status before any Job exists, then prepare → migrate → verify run against the
copy, and the drop always follows (success, failure, a deleted run, a
restarted operator). A failing rehearsal ends the run Failed with nothing of
the real database touched: no real migrate, no restore, nothing held.
"""

from __future__ import annotations

from typing import Any

import pytest

from alembic_operator.api import constants, model
from alembic_operator.api.conditions import ConditionType, EventReason, Reason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import Observed, holding, release

from .world import BACKUP_DATA, MIGRATE_DATA, VERIFY_DATA, World, condition, failed, make_spec, succeeded

REHEARSAL = {"rehearsal": {"enabled": True}}
PREPARE_DATA = {"database": "x", "databaseBytes": 9_000_000, "restoreSeconds": 2.5}
DROP_DATA = {
    "dropped": True,
    "existed": True,
    "writes": [{"table": "public.task", "inserted": 0, "updated": 40, "deleted": 3}],
    "reportUri": "s3://backups/pg/shop/x/rehearsal.json",
}
PASSING = (("rehearse-prepare", PREPARE_DATA), ("rehearse-migrate", MIGRATE_DATA), ("rehearse-verify", VERIFY_DATA))
#: The subcommand whose result each rehearsal Job leaves (rehearse exec runs the real migrate and verify).
RESULT_OF = {
    "rehearse-prepare": "rehearse",
    "rehearse-migrate": "migrate",
    "rehearse-verify": "verify",
    "rehearse-drop": "rehearse",
}


def created(world: World) -> list[str]:
    return [c.step for d in world.decisions for c in d.creates]


def end(world: World, step: str, *, ok: bool = True, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The ``step`` Job ends, leaving the result its command writes."""
    name = world.job(step)
    job = succeeded(name, RESULT_OF[step], data) if ok else failed(name, RESULT_OF[step], data=data, **kwargs)
    world.set_job(step, job)


def rehearsing_world(**spec: Any) -> World:
    """A rehearsing run whose backup just ended: the name is recorded, nothing of the rehearsal created yet."""
    world = World(make_spec(**{**REHEARSAL, **spec}))
    if "writeFence" in spec:
        world.add_workload("Deployment/shop", 2)
    world.run_to(Phase.BACKING_UP)
    if "writeFence" in spec:  # the fence is raised once the workload's pods are gone; then the backup starts
        world.tick()
        world.stop_pods("Deployment/shop")
        world.tick()
    world.finish("backup", data=BACKUP_DATA)
    world.tick()
    return world


def test_the_scratch_database_is_recorded_in_status_before_any_rehearsal_job_exists():
    world = rehearsing_world()
    decision = world.decisions[-1]
    assert world.phase == Phase.REHEARSING
    database = world.status.rehearsal.database
    assert database.startswith("alembic_rehearsal_") and len(database) <= 63
    assert decision.creates == []  # the stored status names the database first
    assert decision.requeue_after is not None
    decision = world.tick()  # the status is stored: now the copy is made
    [prepare] = decision.creates
    assert prepare.step == "rehearse-prepare"
    assert prepare.manifest["spec"]["template"]["spec"]["containers"][0]["command"][:5] == [
        "alembic-operator",
        "rehearse",
        "prepare",
        "--database",
        database,
    ]


def rehearse_to_the_drop(world: World, *, seconds: float = 0) -> None:
    """Prepare, migrate and verify the copy, each taking ``seconds``; the drop has started."""
    world.tick()
    for step, data in PASSING:
        world.advance(seconds)
        end(world, step, data=data)
        world.tick()
        assert world.phase == Phase.REHEARSING


def test_a_passing_rehearsal_runs_prepare_migrate_verify_drop_in_order_then_the_real_migration():
    world = rehearsing_world()
    rehearse_to_the_drop(world, seconds=7)
    assert created(world) == [
        "plan",
        "backup",
        "rehearse-prepare",
        "rehearse-migrate",
        "rehearse-verify",
        "rehearse-drop",
    ]
    world.advance(2)
    end(world, "rehearse-drop", data=DROP_DATA)
    world.tick()
    assert world.phase == Phase.MIGRATING
    assert created(world)[-1] == "migrate"
    rehearsal = world.status.rehearsal
    assert rehearsal.outcome == "Succeeded" and rehearsal.dropped is True
    assert rehearsal.durations_seconds == {"prepare": 7.0, "migrate": 7.0, "verify": 7.0, "drop": 2.0}
    assert rehearsal.verify.startswith("Succeeded: ")
    assert [(w.table, w.inserted, w.updated, w.deleted) for w in rehearsal.writes] == [("public.task", 0, 40, 3)]
    assert rehearsal.report_uri == DROP_DATA["reportUri"]
    assert condition(world.status, ConditionType.REHEARSED).status == "True"
    assert world.status.to_revision is None  # the copy's revisions are not the real database's
    world.finish("migrate", data=MIGRATE_DATA)
    world.tick()
    world.finish("verify", data=VERIFY_DATA)
    world.tick()
    assert world.phase == Phase.SUCCEEDED


@pytest.mark.parametrize(
    ("failing", "before"),
    [
        ("rehearse-prepare", []),
        ("rehearse-migrate", ["rehearse-prepare"]),
        ("rehearse-verify", ["rehearse-prepare", "rehearse-migrate"]),
    ],
)
def test_a_failing_rehearsal_drops_the_copy_and_ends_failed_with_the_database_untouched(failing, before):
    world = rehearsing_world(writeFence={"scaleDown": [{"kind": "Deployment", "name": "shop"}]})
    world.tick()
    data = {"rehearse-prepare": PREPARE_DATA, "rehearse-migrate": MIGRATE_DATA}
    for step in before:
        end(world, step, data=data[step])
        world.tick()
    end(world, failing, ok=False, message="column task.owner contains null values", changed=True)
    world.tick()
    assert world.phase == Phase.REHEARSING  # the drop comes first, always
    assert created(world)[-1] == "rehearse-drop"
    end(world, "rehearse-drop", data=DROP_DATA)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    short = failing.removeprefix("rehearse-")
    assert world.status.message == (
        f"rehearsal failed: {short} failed: column task.owner contains null values; the database was not touched"
    )
    assert condition(world.status, ConditionType.READY).reason == Reason.REHEARSAL_FAILED
    # No real migration, no restore: nothing but the copy was ever written.
    assert not {"migrate", "restore", "verify"} & set(created(world))
    assert world.status.rehearsal.outcome == "Failed" and world.status.rehearsal.dropped is True
    assert world.status.fence is not None and world.status.fence.state == "Lifted"
    assert any(e.reason == EventReason.REHEARSAL_STEP_FAILED and e.type == "Warning" for e in decision.events)


def test_a_failing_verification_of_the_copy_is_recorded_as_the_rehearsals_verify_outcome():
    world = rehearsing_world()
    world.tick()
    end(world, "rehearse-prepare", data=PREPARE_DATA)
    world.tick()
    end(world, "rehearse-migrate", data=MIGRATE_DATA)
    world.tick()
    violation = {"violations": [{"table": "public.task", "before": 300, "after": 270}]}
    end(world, "rehearse-verify", ok=False, reason="RowCountViolation", message="task lost 30 rows", data=violation)
    world.tick()
    assert world.status.rehearsal.verify == "Failed: task lost 30 rows"
    assert world.status.row_counts is None  # the copy's counts are not the real database's


def test_a_drop_that_fails_is_tried_again_and_then_named_as_left_without_blocking_a_passed_rehearsal():
    world = rehearsing_world()
    rehearse_to_the_drop(world)
    attempts = world.settings.reconcile.max_attempts
    for attempt in range(1, attempts + 1):
        assert world.status.steps.rehearse_drop.attempt == attempt
        end(world, "rehearse-drop", ok=False, message="server closed the connection")
        decision = world.tick()
    assert created(world).count("rehearse-drop") == attempts
    assert world.status.rehearsal.dropped is False
    [left] = [e for e in decision.events if e.reason == EventReason.SCRATCH_DATABASE_LEFT]
    assert left.type == "Warning" and f"DROP DATABASE {world.status.rehearsal.database}" in left.message
    assert world.phase == Phase.MIGRATING  # the rehearsal passed; the copy's leftovers do not touch the database


def test_a_vanished_rehearsed_migration_is_not_repeated_the_rehearsal_fails_and_the_copy_is_dropped():
    world = rehearsing_world()
    world.tick()
    end(world, "rehearse-prepare", data=PREPARE_DATA)
    world.tick()
    del world.jobs[world.job("rehearse-migrate")]
    world.advance(world.settings.reconcile.job_grace_seconds + 1)
    world.tick()
    assert created(world).count("rehearse-migrate") == 1
    assert created(world)[-1] == "rehearse-drop"


def test_waiting_in_rehearsing_is_idempotent():
    world = rehearsing_world()
    world.tick()
    world.advance(5)
    decision = world.tick()
    assert decision.creates == [] and decision.events == []
    assert world.phase == Phase.REHEARSING


def test_a_restarted_operator_drops_the_database_the_status_names():
    """Only the stored status survives a restart: a rehearsal resumes from it and drops what it names."""
    world = rehearsing_world()
    world.tick()
    end(world, "rehearse-prepare", data=PREPARE_DATA)
    world.tick()
    stored = model.dump(world.status)
    stored["rehearsal"]["database"] = "alembic_rehearsal_recorded"  # e.g. named by an older operator
    restarted = World(world.run.spec)
    restarted.run = world.run.__class__(**{**world.run.__dict__, "status": model.parse_status(stored)})
    restarted.jobs = dict(world.jobs)
    restarted.now = world.now
    end(restarted, "rehearse-migrate", ok=False, message="boom", changed=True)
    decision = restarted.tick()
    [drop] = decision.creates
    command = drop.manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:5] == ["alembic-operator", "rehearse", "drop", "--database", "alembic_rehearsal_recorded"]


# --------------------------------------------------------------------------- a deleted run


def deleted_mid_rehearsal() -> World:
    """A rehearsing run whose rehearsed migration ran when it was deleted, and has ended since."""
    world = rehearsing_world()
    world.tick()
    end(world, "rehearse-prepare", data=PREPARE_DATA)
    world.tick()
    end(world, "rehearse-migrate", data=MIGRATE_DATA)
    return world


def test_a_run_deleted_mid_rehearsal_is_held_until_a_drop_job_dropped_its_copy():
    world = deleted_mid_rehearsal()
    assert holding(world.status)
    first = release(
        status=world.status, now=world.now, run=world.run, observed=Observed(jobs=world.jobs), settings=world.settings
    )
    [drop] = first.creates
    assert drop.step == "rehearse-drop"
    assert drop.manifest["spec"]["template"]["spec"]["containers"][0]["command"][4] == world.status.rehearsal.database
    assert holding(first.status)
    again = release(
        status=first.status, now=world.now, run=world.run, observed=Observed(jobs=world.jobs), settings=world.settings
    )
    assert again.creates == [] and holding(again.status)  # the drop Job is not seen yet: wait, create nothing more
    jobs = {**world.jobs, drop.name: succeeded(drop.name, "rehearse", DROP_DATA)}
    done = release(
        status=again.status, now=world.now, run=world.run, observed=Observed(jobs=jobs), settings=world.settings
    )
    assert not holding(done.status) and done.status.rehearsal.dropped is True


def test_a_deleted_run_whose_drop_keeps_failing_is_let_go_with_the_database_named():
    world = deleted_mid_rehearsal()
    status, jobs = world.status, dict(world.jobs)
    for _ in range(world.settings.reconcile.max_attempts):
        decision = release(
            status=status, now=world.now, run=world.run, observed=Observed(jobs=jobs), settings=world.settings
        )
        [drop] = decision.creates
        jobs[drop.name] = failed(drop.name, "rehearse")
        status = decision.status
    decision = release(
        status=status, now=world.now, run=world.run, observed=Observed(jobs=jobs), settings=world.settings
    )
    assert not holding(decision.status) and decision.status.rehearsal.dropped is False
    assert [e.reason for e in decision.events] == [EventReason.SCRATCH_DATABASE_LEFT]


def test_a_deleted_run_that_never_rehearsed_or_already_dropped_starts_no_job():
    world = World(make_spec())
    world.run_to(Phase.MIGRATING)
    assert (
        release(status=world.status, now=world.now, run=world.run, observed=Observed(), settings=world.settings).creates
        == []
    )
    dropped = rehearsing_world()
    dropped.status.rehearsal.dropped = True
    assert not holding(dropped.status)
    assert release(status=dropped.status, now=dropped.now, run=dropped.run, settings=dropped.settings).creates == []


# --------------------------------------------------------------------------- the rehearsal's findings and approval


def rehearsed_with_deletes(**spec: Any) -> World:
    """A run whose rehearsal passed and whose copy lost rows (a DELETE the plan did not flag), drop ended."""
    world = rehearsing_world(**spec)
    rehearse_to_the_drop(world)
    end(world, "rehearse-drop", data=DROP_DATA)
    world.tick()
    return world


def test_rows_the_rehearsal_deleted_wait_for_a_person_under_approve_and_an_approval_migrates():
    world = rehearsed_with_deletes(plan={"destructive": "approve"})
    assert world.phase == Phase.AWAITING_APPROVAL
    assert "migrate" not in created(world)
    approval = world.status.approval
    assert approval.state == "Waiting"
    assert approval.reasons == ["the rehearsal deleted public.task: 3 row(s) and plan.destructive is approve"]
    assert "the rehearsal deleted public.task: 3 row(s)" in approval.summary
    assert any(e.reason == EventReason.AWAITING_APPROVAL for e in world.decisions[-1].events)
    world.annotate(**{constants.ANNOTATION_APPROVE_MIGRATION: "alice"})
    world.tick()
    assert world.phase == Phase.MIGRATING and created(world)[-1] == "migrate"
    assert created(world).count("backup") == 1  # the backup the rehearsal used is the run's backup


def test_a_rejection_after_the_rehearsal_ends_failed_without_migrating():
    world = rehearsed_with_deletes(plan={"destructive": "approve"})
    world.annotate(**{constants.ANNOTATION_REJECT_MIGRATION: "bob"})
    world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.message == "the migration was rejected by bob; the database was not touched"
    assert "migrate" not in created(world)


@pytest.mark.parametrize("spec", [{}, {"approval": {"required": True}}])
def test_rows_deleted_on_the_copy_do_not_wait_under_warn_or_once_a_person_approved(spec):
    annotations = {constants.ANNOTATION_APPROVE_MIGRATION: "alice"} if spec else {}
    world = World(make_spec(**{**REHEARSAL, **spec}), annotations=annotations)
    world.run_to(Phase.BACKING_UP)  # approval.required: approved by alice after the plan
    world.finish("backup", data=BACKUP_DATA)
    world.tick()
    rehearse_to_the_drop(world)
    end(world, "rehearse-drop", data=DROP_DATA)
    world.tick()
    assert world.phase == Phase.MIGRATING
