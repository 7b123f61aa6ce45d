"""A step ends when its Pod's container terminated, not a second later when the Job controller marks the Job.

With restartPolicy Never and ``backoffLimit: 0`` the Pod's end is the Job's end and its termination
message is final; the run must move on from it with exactly the status the Job path gives.
"""

import dataclasses
from datetime import datetime

from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import JobCondition, JobObservation, PodObservation

from .world import BACKUP_DATA, MIGRATE_DATA, VERIFY_DATA, World, failed, succeeded

DATA = {"plan": {"statements": 3, "destructive": []}, "backup": BACKUP_DATA, "migrate": MIGRATE_DATA}


def pod_only(job: JobObservation) -> JobObservation:
    """The same Job as the Job controller has not caught up yet: still active, no counters or conditions."""
    return dataclasses.replace(job, active=1, succeeded=0, failed=0, conditions=())


def drive(world: World, *, by_pod: bool, verify_ok: bool = True) -> None:
    world.tick()
    for step in ("plan", "backup", "migrate", "verify"):
        name = world.job(step)
        if step == "verify" and not verify_ok:
            job = failed(name, step, reason="RowCountViolation", message="task lost 3 rows", data=VERIFY_DATA)
        else:
            job = succeeded(name, step, DATA.get(step, VERIFY_DATA))
        world.jobs[name] = pod_only(job) if by_pod else job
        world.tick()


def test_a_run_goes_through_every_step_on_its_pods_ending_with_the_status_the_jobs_give():
    by_job, by_pod = World(), World()
    drive(by_job, by_pod=False)
    drive(by_pod, by_pod=True)
    assert by_pod.phase == Phase.SUCCEEDED
    assert by_pod.status == by_job.status
    assert [d.actions for d in by_pod.decisions] == [d.actions for d in by_job.decisions]


def test_a_step_that_failed_with_its_result_is_acted_on_from_its_pod_like_from_its_job():
    by_job, by_pod = World(), World()
    drive(by_job, by_pod=False, verify_ok=False)
    drive(by_pod, by_pod=True, verify_ok=False)
    assert by_pod.phase == Phase.ROLLING_BACK
    assert by_pod.status == by_job.status
    assert by_pod.status.steps.verify.reason == "RowCountViolation"


def test_a_crash_without_a_result_ends_the_step_from_its_pod_with_the_job_paths_message():
    by_job, by_pod = World(), World()
    for world, to_pod in ((by_job, False), (by_pod, True)):
        world.tick()
        name = world.job("plan")
        job = dataclasses.replace(
            failed(name, "plan", exit_code=137, raw="Killed"),
            pod=PodObservation(phase="Failed", exit_code=137, termination_reason="OOMKilled", termination_message="x"),
        )
        world.jobs[name] = pod_only(job) if to_pod else job
        world.tick()
    assert by_pod.phase == Phase.FAILED and by_pod.status == by_job.status
    assert "exited with code 137 (OOMKilled)" in by_pod.status.steps.plan.message


def test_a_pod_being_deleted_is_not_an_end_the_jobs_condition_says_why():
    world = World()
    world.tick()
    name = world.job("backup" if world.phase == Phase.BACKING_UP else "plan")
    killed = PodObservation(phase="Failed", exit_code=137, termination_reason="Error", deleting=True)
    world.jobs[name] = JobObservation(name=name, active=1, pod=killed)
    world.tick()
    assert world.phase == Phase.PLANNING and world.status.steps.plan.outcome is None
    world.jobs[name] = JobObservation(
        name=name, failed=1, conditions=(JobCondition("Failed", reason="DeadlineExceeded"),), pod=killed
    )
    world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.steps.plan.reason == Reason.DEADLINE_EXCEEDED


def test_a_running_or_unreported_container_is_no_end():
    assert not PodObservation(phase="Running", exit_code=None).ended
    assert not PodObservation(phase="Failed", exit_code=None).ended  # e.g. never started
    assert PodObservation(phase="Succeeded", exit_code=0).ended
    job = JobObservation(name="j", active=1, pod=PodObservation(phase="Running"))
    assert not job.complete and not job.has_failed


def test_a_terminated_container_ends_the_step_before_the_kubelet_reports_the_pods_phase():
    """Under restartPolicy Never the container's terminated state is final: its exit code says how the
    step ended while the phase still says Running (the kubelet is tearing the sandbox down)."""
    for code, outcome in ((0, "Succeeded"), (3, "Failed")):
        pod = PodObservation(phase="Running", exit_code=code, terminated_now=True, restart_policy="Never")
        assert pod.ended and pod.outcome == outcome
        job = JobObservation(name="j", active=1, pod=pod)
        assert (job.complete, job.has_failed) == (code == 0, code != 0)
        assert not job.pods_alive


def test_a_terminated_container_that_may_restart_or_is_only_the_last_state_is_no_end():
    for policy in ("OnFailure", "Always", None):
        assert not PodObservation(phase="Running", exit_code=1, terminated_now=True, restart_policy=policy).ended
    restarted = PodObservation(phase="Running", exit_code=1, terminated_now=False, restart_policy="Never")
    assert not restarted.ended and restarted.outcome is None


def test_a_pod_dict_with_its_container_terminated_and_phase_running_is_read_as_ended():
    pod = {
        "metadata": {"name": "p"},
        "spec": {"restartPolicy": "Never"},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "step", "state": {"terminated": {"exitCode": 0, "message": "{}"}}}],
        },
    }
    observed = PodObservation.from_manifest(pod)
    assert observed.ended and observed.outcome == "Succeeded"
    running_again = {
        **pod,
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "step", "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1}}}
            ],
        },
    }
    assert not PodObservation.from_manifest(running_again).ended


def test_a_pod_dict_being_deleted_is_read_as_deleting():
    pod = {
        "metadata": {"name": "p", "deletionTimestamp": "2026-03-01T12:00:00Z"},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "step", "state": {"terminated": {"exitCode": 1}}}],
        },
    }
    observed = PodObservation.from_manifest(pod)
    assert observed.deleting and not observed.ended


def backing_up() -> World:
    """A run whose plan succeeded and whose backup Job was just created."""
    world = World()
    world.tick()
    world.jobs[world.job("plan")] = succeeded(world.job("plan"), "plan", DATA["plan"])
    world.tick()
    return world


def job_ahead_of_its_pod(job: JobObservation, *, ended_at: datetime) -> JobObservation:
    """The same Job as the Jobs' watch delivered it Complete while the Pods' watch still shows the Pod running
    (two streams; under load of 1,000 runs the Pods' lagged 10 s): no container end, no result yet."""
    return dataclasses.replace(job, completion_time=ended_at, pod=PodObservation(phase="Running", started_at=ended_at))


def test_a_job_seen_complete_before_its_pod_waits_for_the_pods_result_then_records_the_backup():
    world = backing_up()
    assert world.phase == Phase.BACKING_UP
    name = world.job("backup")
    done = succeeded(name, "backup", BACKUP_DATA)
    world.jobs[name] = job_ahead_of_its_pod(done, ended_at=world.now)
    world.advance(3)
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP and world.status.steps.backup.outcome is None  # not "no result"
    assert decision.requeue_after is not None and decision.requeue_after <= 2
    world.jobs[name] = done  # the Pod's end arrives
    world.advance(1)
    world.tick()
    assert world.phase == Phase.MIGRATING
    assert world.status.backup is not None and world.status.backup.sha256 == BACKUP_DATA["sha256"]


def test_a_pod_that_never_shows_its_end_is_waited_for_only_the_grace_then_the_job_path_decides():
    world = backing_up()
    name = world.job("backup")
    world.jobs[name] = job_ahead_of_its_pod(succeeded(name, "backup", BACKUP_DATA), ended_at=world.now)
    world.advance(world.settings.reconcile.job_grace_seconds)
    world.tick()
    assert world.phase == Phase.FAILED  # as before: a backup that reports success without its URI counts failed
    assert world.status.steps.backup.reason == Reason.NO_RESULT


def test_a_job_failed_on_its_deadline_with_its_pod_being_deleted_is_not_waited_for():
    world = World()
    world.tick()
    name = world.job("plan")
    killed = PodObservation(phase="Running", exit_code=None, deleting=True)
    world.jobs[name] = JobObservation(
        name=name,
        failed=1,
        conditions=(JobCondition("Failed", reason="DeadlineExceeded", since=world.now),),
        pod=killed,
    )
    world.tick()
    assert world.phase == Phase.FAILED


def never_started(name: str) -> JobObservation:
    """A Job whose container the runtime could not start (a node starting 100 pods at once)."""
    pod = PodObservation(
        phase="Failed",
        exit_code=128,
        termination_reason="StartError",
        termination_message="failed to create containerd task: failed to create shim task: context canceled",
    )
    return JobObservation(
        name=name, failed=1, conditions=(JobCondition("Failed", reason="BackoffLimitExceeded"),), pod=pod
    )


def test_a_repeatable_step_whose_container_never_started_gets_a_new_attempt_then_fails_after_the_last():
    world = backing_up()
    first = world.job("backup")
    world.jobs[first] = never_started(first)
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP and world.status.steps.backup.attempt == 2
    assert world.job("backup") != first and [a.name for a in decision.creates] == [world.job("backup")]
    assert any(e.reason == "StepNotStarted" and "shim task" in e.message for e in decision.events)
    for _ in range(world.settings.reconcile.max_attempts - 1):
        world.jobs[world.job("backup")] = never_started(world.job("backup"))
        world.tick()
    assert world.phase == Phase.FAILED
    assert "StartError" in world.status.steps.backup.message and world.status.steps.backup.exit_code == 128


def test_a_migration_whose_container_never_started_is_not_repeated():
    world = World()
    world.run_to(Phase.MIGRATING)
    name = world.job("migrate")
    world.jobs[name] = never_started(name)
    decision = world.tick()
    assert world.status.steps.migrate.attempt == 1 and world.status.steps.migrate.outcome == "Failed"
    assert not any(e.reason == "StepNotStarted" for e in decision.events)
