"""The operator's indexes keep only what a reconcile reads: each object read slim equals it read whole.

The objects are as the apiserver returns them: the builders' Job (pod template, env, owner), its Pod
with the node's status (container ids, images, conditions, managedFields) and a run applied with
kubectl (its last-applied annotation holds the whole object again).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from alembic_operator.api import constants
from alembic_operator.controller import observing
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.settings import Settings
from tests.building.factories import BASE_SPEC, UID, make_run
from tests.reconciling.world import BACKUP_DATA, termination

MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {"f:x": {}}}}] * 6


def job_and_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    job = job_builders.build_step_job(run=make_run(), step="backup", settings=Settings())
    job["metadata"] |= {"uid": "job-uid", "creationTimestamp": "2026-03-01T12:00:00Z", "managedFields": MANAGED}
    job["status"] = {
        "active": 1,
        "startTime": "2026-03-01T12:00:01Z",
        "ready": 0,
        "uncountedTerminatedPods": {},
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": "x", "reason": "Done"}],
    }
    pod = {
        "metadata": {
            "name": job["metadata"]["name"] + "-x7k2p",
            "namespace": "shop",
            "uid": "pod-uid",
            "creationTimestamp": "2026-03-01T12:00:01Z",
            "labels": job["spec"]["template"]["metadata"]["labels"],
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": "job-uid"}
                | {"controller": True, "blockOwnerDeletion": True}
            ],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "managedFields": MANAGED,
        },
        "spec": copy.deepcopy(job["spec"]["template"]["spec"]) | {"nodeName": "node-1"},
        "status": {
            "phase": "Succeeded",
            "hostIP": "10.201.0.1",
            "podIP": "10.202.0.7",
            "conditions": [{"type": t, "status": "False"} for t in ("Ready", "ContainersReady", "Initialized")],
            "containerStatuses": [
                {
                    "name": "step",
                    "image": "alembic-operator:dev",
                    "imageID": "sha256:" + "a" * 64,
                    "containerID": "containerd://" + "b" * 64,
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": termination("backup", ok=True, data=BACKUP_DATA),
                            "startedAt": "2026-03-01T12:00:02Z",
                            "finishedAt": "2026-03-01T12:00:09Z",
                            "containerID": "containerd://" + "b" * 64,
                        }
                    },
                    "lastState": {},
                }
            ],
        },
    }
    return job, pod


def applied_run() -> dict[str, Any]:
    run = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "metadata": {
            "name": "shop-1-4-2",
            "namespace": "shop",
            "uid": UID,
            "generation": 1,
            "resourceVersion": "4711",
            "creationTimestamp": "2026-03-01T12:00:00Z",
            "finalizers": [constants.FINALIZER],
            "annotations": {constants.ANNOTATION_APPROVE_RESTORE: "alice"},
            "managedFields": MANAGED,
        },
        "spec": copy.deepcopy(BASE_SPEC),
        "status": {"phase": "BackingUp", "steps": {"backup": {"job": "j", "attempt": 1}}},
    }
    run["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(run)
    return run


def test_a_step_job_and_its_pod_are_observed_the_same_slim_as_whole():
    job, pod = job_and_pod()
    whole = observing.observed([job], [pod], run_uid=UID)
    slim = observing.observed([observing.slim_job(job)], [observing.slim_pod(pod)], run_uid=UID)
    assert slim == whole
    assert whole.jobs[job["metadata"]["name"]].complete  # the Pod ended: the case the reconciler acts on


def test_a_look_alike_job_stays_ignored_when_slim():
    job, pod = job_and_pod()
    job["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert observing.observed([observing.slim_job(job)], [observing.slim_pod(pod)], run_uid=UID).jobs == {}


def test_a_run_is_read_the_same_slim_as_whole_without_kubectls_copy_of_it():
    run = applied_run()
    slim = observing.slim_run(run)
    whole = observing.run_view(run)
    assert "kubectl.kubernetes.io/last-applied-configuration" in whole.annotations  # read by no reconcile
    whole.annotations.pop("kubectl.kubernetes.io/last-applied-configuration")
    assert observing.run_view(slim) == whole
    assert observing.run_summary(slim) == observing.run_summary(run)
    assert slim["metadata"]["finalizers"] == [constants.FINALIZER]
    assert slim["metadata"]["resourceVersion"] == "4711"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in slim["metadata"]["annotations"]


def test_the_slim_objects_are_a_fraction_of_the_whole():
    job, pod = job_and_pod()
    for whole, slim in ((job, observing.slim_job(job)), (pod, observing.slim_pod(pod))):
        assert len(json.dumps(slim)) < len(json.dumps(whole)) / 3
    run = applied_run()
    assert len(json.dumps(observing.slim_run(run))) < len(json.dumps(run)) / 2


def test_the_newer_run_is_the_one_with_the_higher_resource_version():
    old, new = applied_run(), applied_run()
    new["metadata"]["resourceVersion"] = "4712"
    assert observing.newest(old, new) is new and observing.newest(new, old) is new
    assert observing.newest(None, old) is old and observing.newest(None, None) is None


def test_a_pod_whose_container_ended_before_its_phase_is_observed_ended_when_slim():
    """The kubelet reports the container's terminated state before the Pod's phase (it tears down the
    sandbox in between): the slim Pod keeps the restart policy that makes that state final."""
    job, pod = job_and_pod()
    pod["status"]["phase"] = "Running"
    slim = observing.observed([observing.slim_job(job)], [observing.slim_pod(pod)], run_uid=UID)
    assert slim == observing.observed([job], [pod], run_uid=UID)
    assert slim.jobs[job["metadata"]["name"]].complete
