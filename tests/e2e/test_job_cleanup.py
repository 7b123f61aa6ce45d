"""An ended run's step Jobs and their Pods go once ``retain_seconds`` passed; a failed step's Job stays.

Issue 18: every step Job and its finished Pod stayed until the run was deleted, and at 1,000 runs the
one node held 3,450 finished Pods. Here the real garbage collector and node remove them; the run's
status still names each step's Job. The operator is restarted with ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS=0
for this test and with the bed's settings after it (the other tests read Jobs of ended runs).
"""

from __future__ import annotations

import json

from testbed import faults
from tests.e2e import appdb

RUN_LABEL = "alembic-operator.dev/run"


def _left(app, run: str) -> dict[str, list[str]]:
    """The Jobs and Pods of ``run`` that still exist, by kind (run label, as the operator sets it)."""
    out = app.cluster.kubectl("-n", app.namespace, "get", "jobs,pods", "-l", f"{RUN_LABEL}={run}", "-o", "json")
    found: dict[str, list[str]] = {"Job": [], "Pod": []}
    for item in json.loads(out.stdout)["items"]:
        found[item["kind"]].append(item["metadata"]["name"])
    return found


def test_an_ended_runs_jobs_and_pods_are_deleted_and_a_failed_steps_job_is_kept(app, database, operator, kubelet):
    operator.stop()
    operator.start({"ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS": "0"})
    try:
        appdb.migrate_to(database, "0003")
        app.apply(app.manifest("raises-kept", image="example-app:raises"))
        failed = app.wait("raises-kept")["status"]
        app.apply(app.manifest("cleaned"))
        succeeded = app.wait("cleaned")["status"]
        assert (failed["phase"], succeeded["phase"]) == ("Failed", "Succeeded"), (failed, succeeded)

        faults.wait_for("the succeeded run's Jobs and Pods gone", lambda: not any(_left(app, "cleaned").values()), 90)
        steps = {step: record["job"] for step, record in succeeded["steps"].items()}
        assert sorted(steps) == ["backup", "migrate", "plan", "verify"], steps
        assert app.get("cleaned")["status"]["steps"] == succeeded["steps"]  # the status still names each Job

        migrate = failed["steps"]["migrate"]
        assert migrate["outcome"] == "Failed", migrate
        kept = faults.wait_for(
            "only the failed migration's Job and Pod left",
            lambda: (left := _left(app, "raises-kept"))["Job"] == [migrate["job"]] and len(left["Pod"]) == 1 and left,
            timeout=90,
        )
        log = kubelet.pod_log(app.namespace, kept["Pod"][0], "step")
        assert "Traceback" in log or "Error" in log, log  # what a person reads to learn why it failed
    finally:
        operator.stop()
        operator.start()
