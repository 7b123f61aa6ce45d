"""`helm upgrade` of the operator while a run is mid-way: the run ends as it would have (issue 19).

The run is caught mid-backup, deterministically: its pg_dump is SIGSTOPped after 1 MiB of the dump
(testbed.faults.freeze_after, as the fault suite does). While it is stopped the chart is upgraded to
a copy with a new version (0.1.1) and a changed pod template, so the Deployment replaces the operator's
pod (strategy Recreate: the old one is gone before the new one starts). Then pg_dump goes on. The
new operator must pick the run up where it was: the backup Job that was running is the one whose
result is recorded (no second backup, no step run twice), and the run Succeeds at the release's
revision, as the run without an upgrade does (tests/helm/test_operator_e2e.py).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import yaml

from testbed import faults, operating
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.helm import bed, support
from tests.helm.support import helm, kubectl

SELECTOR = "app.kubernetes.io/name=alembic-operator"


def test_a_chart_upgrade_mid_backup_lets_the_run_end_as_it_would_have(
    cluster: Cluster,
    kubelet: Node,
    pg15: PostgresServer,
    s3: S3Server,
    namespace: str,
    tmp_path: Path,
    operator: operating.OperatorProcess,
) -> None:
    bed.register_app_images(kubelet)
    data = bed.make_data(cluster, pg15, s3, namespace)
    faults.fill(data.database, 150_000)  # pg_dump streams for a while: it can be stopped mid-way
    # The chart's operator is the only one: the session's host operator would carry the run meanwhile.
    with bed.host_operator_paused(operator), bed.installed_operator(cluster) as op:
        kubectl(
            cluster.kubeconfig,
            "-n",
            namespace,
            "apply",
            "-f",
            "-",
            input=bed.doc_run(data, name="upgraded", image="example-app:2.0"),
        )
        step = faults.wait_for_step_pid(cluster, namespace, "upgraded", "backup")
        dump = faults.wait_for_child(step, "pg_dump", with_arg="--format")
        try:
            faults.freeze_after(dump, 1 << 20)
            before = bed.pod_of(cluster, op.namespace, SELECTOR)
            assert before is not None
            helm(
                "upgrade",
                op.release,
                support.operator_chart_at(tmp_path, "0.1.1"),
                "--namespace",
                op.namespace,
                "--reuse-values",
                "--set",
                "podAnnotations.upgraded=0.1.1",  # a changed pod template: the operator's pod is replaced
                "--wait",
                "--timeout",
                "180s",
                kubeconfig=cluster.kubeconfig,
            )
            after = bed.pod_of(cluster, op.namespace, SELECTOR)
            assert after is not None and after["metadata"]["uid"] != before["metadata"]["uid"], "the pod was kept"
            history = helm(
                "history", op.release, "--namespace", op.namespace, "-o", "yaml", kubeconfig=cluster.kubeconfig
            )
            assert [h["chart"] for h in yaml.safe_load(history.stdout)][-1] == "alembic-operator-0.1.1"
            run = bed.get_run(cluster, namespace, "upgraded")
            assert run is not None and run["status"]["phase"] == "BackingUp", run
        finally:
            faults.kill(dump, signal.SIGCONT)
        followed = bed.follow(cluster, namespace, "upgraded", timeout=300)

    status = followed.final["status"]
    assert followed.phase == "Succeeded", json.dumps(status, indent=1)[:3000]
    assert (status.get("fromRevision"), status.get("toRevision")) == (None, "0005"), status
    assert data.database.query("SELECT version_num FROM alembic_version") == [("0005",)]
    # Each step ran once, in its first Job: the backup that was stopped is the one recorded.
    jobs = json.loads(
        kubectl(
            cluster.kubeconfig, "-n", namespace, "get", "jobs", "-l", "alembic-operator.dev/run=upgraded", "-o", "json"
        ).stdout
    )["items"]
    steps = sorted(j["metadata"]["labels"]["alembic-operator.dev/step"] for j in jobs)
    assert steps == ["backup", "migrate", "plan", "verify"], steps
    for step_name in steps:
        record = status["steps"][step_name]
        assert (record["outcome"], record["attempt"]) == ("Succeeded", 1), (step_name, record)
    assert status["steps"]["backup"]["job"] == next(
        j["metadata"]["name"] for j in jobs if j["metadata"]["labels"]["alembic-operator.dev/step"] == "backup"
    )
    bucket, key = faults.split_uri(status["backup"]["uri"])
    assert s3.client().head_object(Bucket=bucket, Key=key)["ContentLength"] == status["backup"]["sizeBytes"]
