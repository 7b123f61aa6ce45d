"""Reading Job and Pod dicts (as the API returns them) into observations."""

from datetime import UTC, datetime

from alembic_operator.controller.reconciler import JobObservation, PodObservation

from .world import termination

JOB = {
    "metadata": {"name": "shop-1-backup-abcde", "labels": {}},
    "status": {
        "active": 0,
        "failed": 1,
        "startTime": "2026-03-01T12:00:00Z",
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            },
        ],
    },
}


def pod(name, created, state, phase="Running", **status):
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, **status, "containerStatuses": [{"name": "step", **state}]},
    }


def test_a_job_dict_is_read_with_its_counts_conditions_and_times():
    job = JobObservation.from_manifests(JOB)
    assert job.name == "shop-1-backup-abcde" and job.failed == 1 and job.active == 0
    assert job.has_failed and job.failed_condition.reason == "DeadlineExceeded"
    assert job.start_time == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert job.pod is None and not job.deleting


def test_the_newest_pod_is_kept():
    old = pod("a", "2026-03-01T12:00:00Z", {"state": {"running": {"startedAt": "2026-03-01T12:00:05Z"}}})
    new = pod(
        "b",
        "2026-03-01T12:01:00Z",
        {"state": {"waiting": {"reason": "ErrImagePull", "message": "nope"}}},
        phase="Pending",
    )
    job = JobObservation.from_manifests(JOB, [old, new])
    assert job.pod.waiting_reason == "ErrImagePull" and job.pod.waiting_message == "nope"
    assert job.pod.started_at is None and job.pod.phase == "Pending"


def test_a_terminated_container_gives_exit_code_and_termination_message():
    message = termination("backup", ok=True, data={"uri": "s3://b/k"})
    p = pod(
        "a",
        "2026-03-01T12:00:00Z",
        {
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "message": message,
                    "startedAt": "2026-03-01T12:00:05Z",
                }
            }
        },
        phase="Succeeded",
    )
    obs = PodObservation.from_manifest(p)
    assert obs.exit_code == 0 and obs.termination_message == message and obs.termination_reason == "Completed"
    assert obs.started_at == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


def test_an_evicted_pod_keeps_its_reason_and_message():
    p = {
        "metadata": {"name": "a"},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: ephemeral-storage.",
        },
    }
    obs = PodObservation.from_manifest(p)
    assert obs.reason == "Evicted" and "ephemeral-storage" in obs.message and obs.exit_code is None


def test_a_job_being_deleted_is_marked():
    job = JobObservation.from_manifests({**JOB, "metadata": {"name": "x", "deletionTimestamp": "2026-03-01T12:00:00Z"}})
    assert job.deleting


def test_fenced_workloads_are_read_only_while_the_fence_is_being_raised():
    from alembic_operator.api import model
    from alembic_operator.api.model import FenceStatus
    from alembic_operator.controller import observing

    from .world import make_run, make_spec

    spec = make_spec(writeFence={"scaleDown": [{"kind": "StatefulSet", "name": "db-writer"}]})
    assert observing.fence_to_read(make_run(spec)) == [("StatefulSet", "db-writer")]
    up = model.MigrationRunStatus(phase=model.Phase.MIGRATING, fence=FenceStatus(replicas={}, state="Up"))
    assert observing.fence_to_read(make_run(spec, status=up)) == []
    assert observing.fence_to_read(make_run()) == []


def test_a_workload_that_is_gone_is_observed_as_not_existing():
    from alembic_operator.controller import observing

    workloads = {"Deployment/a": None, "Deployment/b": {"replicas": 2, "current": 1, "pods": 2}}
    seen = observing.observed([], [], workloads, run_uid="u")
    assert seen.workloads["Deployment/a"].exists is False
    assert (seen.workloads["Deployment/b"].replicas, seen.workloads["Deployment/b"].pods) == (2, 2)


def _owned(obj: dict, kind: str, name: str, uid: str) -> dict:
    owner = {"kind": kind, "name": name, "uid": uid, "controller": True}
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner]}}


def test_only_jobs_the_run_controls_count_and_pods_pair_with_jobs_by_owner_uid_not_by_name():
    from alembic_operator.controller import observing

    running = {"state": {"running": {"startedAt": "2026-03-01T12:00:01Z"}}}
    ours = _owned({**JOB, "metadata": {**JOB["metadata"], "uid": "job-1"}}, "MigrationRun", "shop-1", "run-1")
    # A look-alike: same name and labels, another controller (someone who may create Jobs forged it).
    forged = _owned(
        {**JOB, "metadata": {**JOB["metadata"], "name": "shop-1-verify-abcde", "uid": "job-2"}}, "x", "y", "z"
    )
    own_pod = _owned(pod("p1", "2026-03-01T12:00:00Z", running), "Job", "shop-1-backup-abcde", "job-1")
    # A pod naming our Job but owned by another uid (a forged termination message) is not paired.
    forged_state = {"state": {"running": {"startedAt": "2026-03-01T12:00:09Z"}}}
    fake_pod = _owned(pod("p2", "2026-03-01T12:00:09Z", forged_state), "Job", "shop-1-backup-abcde", "job-9")
    seen = observing.observed([ours, forged], [own_pod, fake_pod], run_uid="run-1")
    assert list(seen.jobs) == ["shop-1-backup-abcde"]
    paired = seen.jobs["shop-1-backup-abcde"].pod
    assert paired is not None and paired.phase == "Running" and paired.started_at.second == 1  # p1, not newer p2
