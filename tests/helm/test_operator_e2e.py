"""`helm install` of charts/alembic-operator runs the real operator, with the chart's RBAC only;
a MigrationRun applied with kubectl (the README's example) Succeeds; real statuses of successful,
rolled-back and failed runs are classified right by the Argo CD Lua and by kstatus.

The operator is a Pod of the chart's Deployment, run by the bed's node (the real kubelet) with the
projected token of the chart's ServiceAccount, so the permissions it works with are
exactly what the chart's ClusterRole grants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import operating
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.example import support as app
from tests.helm import bed, support
from tests.helm.support import kubectl

#: The product's metric families (README, "Operating it") and their Prometheus types.
PRODUCT_METRICS = {
    "alembic_operator_runs_finished_total": "counter",
    "alembic_operator_step_duration_seconds": "histogram",
    "alembic_operator_backup_bytes_total": "counter",
    "alembic_operator_runs_active": "gauge",
    "alembic_operator_reconciles_total": "counter",
    "alembic_operator_jobs_deleted_total": "counter",
}


@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubelet: Node, operator: operating.OperatorProcess) -> Iterator[bed.Operator]:
    """The chart's operator, the only one acting meanwhile (the session's host operator, the ``operator``
    this fixture overrides, is paused): its /metrics then count every step of its runs."""
    bed.register_app_images(kubelet)
    with bed.host_operator_paused(operator), bed.installed_operator(cluster) as op:
        yield op


@pytest.fixture
def data(cluster: Cluster, pg15: PostgresServer, s3: S3Server, namespace: str) -> bed.Data:
    return bed.make_data(cluster, pg15, s3, namespace)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the real MigrationRun objects of this module are saved (one JSON file per status seen)."""
    return tmp_path_factory.mktemp("captured-runs")


def _assert_classified(followed: bed.Followed) -> None:
    for obj in followed.seen:
        assert bed.check_health(obj) == bed.expected_health(obj), json.dumps(obj.get("status"), indent=1)


def test_operator_pod_runs_with_the_charts_service_account_and_only_its_rbac(
    cluster: Cluster, operator: bed.Operator
) -> None:
    """The Deployment's pod runs (metrics and /healthz answer) as the chart's SA, which may do exactly
    the chart's rules: runs, Jobs, read-only Pods, Events — and no Secrets."""
    pod = bed.pod_of(cluster, operator.namespace, "app.kubernetes.io/name=alembic-operator")
    assert pod is not None and pod["status"]["phase"] == "Running", pod and pod["status"]
    assert pod["spec"]["serviceAccountName"] == operator.service_account
    page = operator.metrics()
    for family, kind in PRODUCT_METRICS.items():
        assert f"# TYPE {family} {kind}" in page, f"{family} is missing from /metrics"
    support.wait_for(
        lambda: bed.http_get(operator.url(operator.liveness_port, "/healthz"))[0] == 200,
        60,
        "the operator's /healthz",
    )
    assert bed.sa_can(cluster, operator, "watch", "migrationruns.alembic-operator.dev", "--all-namespaces")
    assert bed.sa_can(cluster, operator, "patch", "migrationruns.alembic-operator.dev/status", "-n", "any")
    assert bed.sa_can(cluster, operator, "create", "jobs.batch", "-n", "any")
    assert not bed.sa_can(cluster, operator, "get", "secrets", "-n", "any")
    assert not bed.sa_can(cluster, operator, "create", "pods", "-n", "any")
    assert not bed.sa_can(cluster, operator, "delete", "migrationruns.alembic-operator.dev", "-n", "any")


def test_kubectl_applied_run_succeeds_and_its_statuses_classify_right(
    cluster: Cluster, operator: bed.Operator, data: bed.Data, captured: Path
) -> None:
    """Door 1: kubectl apply of the docs' MigrationRun migrates an empty database to 0004; every status
    seen on the way is Progressing/InProgress, the last Healthy/Current."""
    metrics_before = operator.metrics()
    kubectl(
        cluster.kubeconfig, "-n", data.namespace, "apply", "-f", "-", input=bed.doc_run(data, name="example-app-1-0")
    )
    followed = bed.follow(cluster, data.namespace, "example-app-1-0")
    bed.save_all(followed, captured, "succeeded")
    assert followed.phase == "Succeeded", json.dumps(followed.final["status"], indent=1)
    assert app.revision(data.database) == app.HEAD
    assert bed.check_health(followed.final) == ("Healthy", "Current")
    assert any(bed.check_health(o) == ("Progressing", "InProgress") for o in followed.seen), followed.phases()
    _assert_classified(followed)
    out = kubectl(cluster.kubeconfig, "-n", data.namespace, "get", "mrun").stdout
    assert "example-app-1-0" in out and "Succeeded" in out
    operating.assert_counted_one_succeeded_run(metrics_before, operator.metrics(), followed.final["status"])


def test_rolled_back_and_failed_runs_are_degraded_and_failed(
    cluster: Cluster, operator: bed.Operator, data: bed.Data, captured: Path
) -> None:
    """A migration that commits and loses rows ends RolledBack (database back at 0004, same rows, its new
    table gone); one that raises ends Failed (database unchanged); both Degraded and kstatus Failed."""
    kubectl(cluster.kubeconfig, "-n", data.namespace, "apply", "-f", "-", input=bed.doc_run(data, name="v1"))
    assert bed.follow(cluster, data.namespace, "v1").phase == "Succeeded"
    before = app.seed(data.database, rows=50)
    counts = app.counts(data.database)

    kubectl(
        cluster.kubeconfig,
        "-n",
        data.namespace,
        "apply",
        "-f",
        "-",
        input=bed.doc_run(data, name="broken", image="example-app:broken"),
    )
    rolled = bed.follow(cluster, data.namespace, "broken")
    bed.save_all(rolled, captured, "rolledback")
    assert rolled.phase == "RolledBack", json.dumps(rolled.final["status"], indent=1)
    assert app.revision(data.database) == app.HEAD and app.counts(data.database) == counts, before
    assert data.database.scalar("SELECT to_regclass('task_archive') IS NULL") == "t"
    assert bed.check_health(rolled.final) == ("Degraded", "Failed")
    assert support.argocd_health(rolled.final)["message"].startswith("RolledBack")
    _assert_classified(rolled)

    kubectl(
        cluster.kubeconfig,
        "-n",
        data.namespace,
        "apply",
        "-f",
        "-",
        input=bed.doc_run(data, name="raises", image="example-app:raises"),
    )
    failed = bed.follow(cluster, data.namespace, "raises")
    bed.save_all(failed, captured, "failed")
    assert failed.phase == "Failed", json.dumps(failed.final["status"], indent=1)
    assert app.revision(data.database) == app.HEAD and app.counts(data.database) == counts
    assert bed.check_health(failed.final) == ("Degraded", "Failed")
    _assert_classified(failed)
