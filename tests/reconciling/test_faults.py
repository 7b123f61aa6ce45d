"""Jobs that vanish, pods that are evicted, never start, or run past their deadline."""

import dataclasses

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase
from alembic_operator.controller import naming
from alembic_operator.controller.reconciler import DeleteJob, JobCondition, JobObservation, PodObservation

from .world import UID, World, pending, running


def test_a_recorded_job_not_yet_observed_is_waited_for_within_the_grace_window():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.jobs.pop(world.job("backup"))  # the informer lags
    world.advance(10)
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert decision.creates == [] and decision.events == []
    assert decision.requeue_after == 20


def test_a_vanished_backup_job_is_recreated_as_a_new_attempt_with_a_new_name():
    world = World()
    world.run_to(Phase.BACKING_UP)
    first = world.job("backup")
    world.jobs.pop(first)
    world.advance(31)
    decision = world.tick()
    [create] = decision.creates
    assert create.step == "backup" and create.name != first
    assert create.name == naming.job_name(run_name=world.run.name, run_uid=UID, step="backup", attempt=2)
    assert world.status.steps.backup.attempt == 2
    assert EventReason.JOB_VANISHED in [e.reason for e in decision.events]
    assert "(attempt 2)" in world.status.message


def test_a_backup_job_that_keeps_vanishing_fails_the_run_after_the_last_attempt():
    world = World()
    world.run_to(Phase.BACKING_UP)
    for _ in range(world.settings.reconcile.max_attempts):
        world.jobs.pop(world.job("backup"), None)
        world.advance(31)
        world.tick(create=False)
    assert world.phase == Phase.FAILED
    assert "vanished 3 times" in world.status.message
    assert "the database is unchanged" in world.status.message


def test_a_vanished_migrate_job_is_never_recreated_and_the_database_is_restored():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.jobs.pop(world.job("migrate"))
    world.advance(31)
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert [c.step for c in decision.creates] == ["restore"]
    assert "vanished" in world.status.steps.migrate.message


def test_an_evicted_pod_fails_the_step():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.set_job(
        "backup",
        JobObservation(
            name="x",
            failed=1,
            conditions=(JobCondition("Failed"),),
            pod=PodObservation(phase="Failed", reason="Evicted", message="The node was low on resource: memory."),
        ),
    )
    world.tick()
    assert world.phase == Phase.FAILED
    assert "evicted: The node was low on resource: memory." in world.status.message


def test_an_evicted_pod_of_a_still_active_job_fails_the_step_and_deletes_the_job():
    world = World()
    world.run_to(Phase.VERIFYING)
    world.set_job(
        "verify", JobObservation(name="x", active=1, pod=PodObservation(phase="Failed", reason="Evicted", message=""))
    )
    decision = world.tick()
    assert DeleteJob(world.status.steps.verify.job) in decision.deletes
    assert world.phase == Phase.ROLLING_BACK


def test_a_job_past_its_deadline_fails_the_step_with_the_deadline_in_the_message():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.set_job(
        "migrate", JobObservation(name="x", failed=1, conditions=(JobCondition("Failed", reason="DeadlineExceeded"),))
    )
    world.tick()
    assert world.status.steps.migrate.message == "the migrate step exceeded its deadline of 1800s"
    assert world.phase == Phase.ROLLING_BACK  # killed mid-way: assume the database changed


def test_the_operator_fails_a_step_itself_when_the_deadline_passed_and_the_job_controller_did_not():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.advance(3600 + 61)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "exceeded its deadline of 3600s" in world.status.message
    assert any(isinstance(a, DeleteJob) for a in decision.actions)


def test_a_running_step_is_rechecked_before_its_deadline():
    world = World()
    world.run_to(Phase.BACKING_UP)
    decision = world.tick()
    assert decision.requeue_after == world.settings.reconcile.poll_seconds


def test_an_image_pull_failure_within_the_pending_window_waits_and_says_why():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.set_job("migrate", pending("x", reason="ImagePullBackOff", message='Back-off pulling image "shop:1.4.2"'))
    world.advance(100)
    decision = world.tick()
    assert world.phase == Phase.MIGRATING
    assert "ImagePullBackOff" in world.status.message
    assert decision.creates == [] and decision.deletes == []
    world.set_job("migrate", running("x", at=world.now))
    world.tick()
    assert world.status.message.startswith("migrating to head")


def test_an_image_pull_failure_past_the_pending_window_fails_the_step_and_deletes_the_job():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.set_job("migrate", pending("x", reason="ErrImagePull", message="manifest unknown"))
    world.advance(601)
    decision = world.tick()
    assert "did not start within 600s: ErrImagePull: manifest unknown" in world.status.steps.migrate.message
    assert len(decision.deletes) == 1
    # The pod never ran: nothing was changed, no restore.
    assert world.phase == Phase.FAILED
    assert "no restore is needed" in world.status.message


def test_a_missing_secret_key_fails_the_backup_at_once_with_the_database_untouched():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.set_job(
        "backup",
        pending(
            "x", reason="CreateContainerConfigError", message="couldn't find key DATABASE_URL in Secret shop/shop-db"
        ),
    )
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "couldn't find key DATABASE_URL in Secret shop/shop-db" in world.status.message
    assert "the database is unchanged" in world.status.message
    assert len(decision.deletes) == 1


def test_a_secret_cache_not_yet_synced_is_waited_for_not_failed():
    """Seen on the bed's real kubelet: a pod scheduled a moment before the Node authorizer knows it
    waits in CreateContainerConfigError "failed to sync secret cache", then starts by itself."""
    world = World()
    world.tick()
    transient = "failed to sync secret cache: timed out waiting for the condition"
    world.set_job("plan", pending("x", reason="CreateContainerConfigError", message=transient))
    decision = world.tick()
    assert world.phase == Phase.PLANNING
    assert decision.deletes == []
    assert "not running yet: CreateContainerConfigError" in world.status.message


def test_a_missing_secret_fails_the_plan_at_once():
    world = World()
    world.tick()
    world.set_job("plan", pending("x", reason="CreateContainerConfigError", message='secret "shop-db" not found'))
    world.tick()
    assert world.phase == Phase.FAILED
    assert 'secret "shop-db" not found' in world.status.message


def test_the_restore_waits_until_the_failed_migrate_pod_has_stopped():
    world = World()
    world.run_to(Phase.MIGRATING)
    name = world.job("migrate")
    world.jobs[name] = JobObservation(
        name=name, failed=1, terminating=1, conditions=(JobCondition("FailureTarget", reason="DeadlineExceeded"),)
    )
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert decision.creates == []
    assert "waiting for the migrate pod to stop" in world.status.message
    world.jobs[name] = dataclasses.replace(world.jobs[name], terminating=0)
    decision = world.tick()
    assert [c.step for c in decision.creates] == ["restore"]


def test_a_newer_attempt_the_status_does_not_record_is_adopted_not_recreated():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.jobs.pop(world.job("backup"))
    second = naming.job_name(run_name=world.run.name, run_uid=UID, step="backup", attempt=2)
    world.jobs[second] = running(second)  # created by a previous operator that crashed before patching status
    world.advance(31)
    decision = world.tick()
    assert decision.creates == []
    assert world.status.steps.backup.job == second and world.status.steps.backup.attempt == 2


def test_a_failed_step_without_a_pod_reports_the_job_condition():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.set_job(
        "backup",
        JobObservation(name="x", failed=1, conditions=(JobCondition("Failed", reason="BackoffLimitExceeded"),)),
    )
    world.tick()
    assert (
        world.status.message == "backup failed: the backup Job failed: BackoffLimitExceeded; the database is unchanged"
    )


def test_an_oom_killed_step_says_so():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.set_job(
        "backup",
        JobObservation(
            name="x",
            failed=1,
            conditions=(JobCondition("Failed"),),
            pod=PodObservation(phase="Failed", exit_code=137, termination_reason="OOMKilled"),
        ),
    )
    world.tick()
    assert "exited with code 137 (OOMKilled)" in world.status.message


def test_a_migrate_the_operator_killed_at_its_deadline_is_restored_only_after_its_pod_is_gone():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.advance(1800 + 61)
    decision = world.tick()
    assert [d.name for d in decision.deletes] == [world.job("migrate")]
    assert world.phase == Phase.ROLLING_BACK and decision.creates == []
    world.tick()
    assert world.status.steps.restore is None  # the killed pod is still terminating
    world.settle()
    decision = world.tick()
    assert [c.step for c in decision.creates] == ["restore"]
    assert world.status.message.startswith("migration failed: the migrate step exceeded its deadline of 1800s")
