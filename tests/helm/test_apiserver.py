"""The rendered charts are accepted by a real kube-apiserver, and bad values stop `helm install`.

- `helm template ... | kubectl apply --dry-run=server -f -` for the operator chart
  (cluster-wide and per-namespace RBAC) and the example app (hooks included), after
  installing the CRD: the apiserver validates every object, RBAC escalation included;
- `helm install` with values the schema rejects fails before anything is created.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.cluster import Cluster
from tests.helm import bed, support
from tests.helm.support import OPERATOR_CHART, kubectl


@pytest.fixture
def crd_installed(cluster: Cluster) -> None:
    bed.ensure_crd(cluster)


def _server_dry_run(cluster: Cluster, manifests: str) -> str:
    return kubectl(cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-", input=manifests).stdout


def test_operator_chart_passes_server_side_dry_run(cluster: Cluster, crd_installed: None, namespace: str) -> None:
    """Every object of the operator chart (default values) is valid for the apiserver."""
    out = support.template(OPERATOR_CHART, "--include-crds", namespace=namespace, release="ao").stdout
    result = _server_dry_run(cluster, out)
    for line in (
        "serviceaccount/ao-alembic-operator",
        "clusterrole.rbac.authorization.k8s.io/ao-alembic-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/ao-alembic-operator",
        "service/ao-alembic-operator-metrics",
        "deployment.apps/ao-alembic-operator",
        "customresourcedefinition.apiextensions.k8s.io/migrationruns.alembic-operator.dev",
    ):
        assert line in result, result


def test_namespaced_operator_chart_passes_server_side_dry_run(
    cluster: Cluster, crd_installed: None, namespace: str
) -> None:
    """watchNamespaces renders Roles the apiserver accepts (in an existing namespace)."""
    out = support.template(
        OPERATOR_CHART, "--set", f"watchNamespaces={{{namespace}}}", namespace=namespace, release="ao"
    ).stdout
    result = _server_dry_run(cluster, out)
    assert "role.rbac.authorization.k8s.io/ao-alembic-operator" in result
    assert "rolebinding.rbac.authorization.k8s.io/ao-alembic-operator" in result


def test_example_app_with_hooks_passes_server_side_dry_run(
    cluster: Cluster, crd_installed: None, namespace: str, app_chart: Path
) -> None:
    """The app chart's Deployment and every hook object are valid; so is the MigrationRun in the ConfigMap."""
    import yaml

    out = support.template(app_chart, namespace=namespace, release="shop").stdout
    result = _server_dry_run(cluster, out)
    for line in (
        "deployment.apps/shop",
        "job.batch/shop-migration",
        "configmap/shop-migration",
        "role.rbac.authorization.k8s.io/shop-migration",
        "serviceaccount/shop-migration",
    ):
        assert line in result, result
    (cm,) = support.find([d for d in yaml.safe_load_all(out) if d], "ConfigMap")
    run = _server_dry_run(cluster, cm["data"]["migrationrun.yaml"])
    assert "migrationrun.alembic-operator.dev/shop-1 created (server dry run)" in run


def test_helm_install_rejects_bad_values_before_creating_anything(cluster: Cluster, namespace: str) -> None:
    """helm install --set replicaCount=2 fails on the schema; no release, no Deployment."""
    proc = support.helm(
        "install",
        "bad",
        OPERATOR_CHART,
        "--namespace",
        namespace,
        "--set",
        "replicaCount=2",
        kubeconfig=cluster.kubeconfig,
        check=False,
    )
    assert proc.returncode != 0 and "/replicaCount" in proc.stderr, proc.stderr
    proc = support.helm(
        "install",
        "bad",
        OPERATOR_CHART,
        "--namespace",
        namespace,
        "--set",
        "liveness.port=healthz",
        kubeconfig=cluster.kubeconfig,
        check=False,
    )
    assert proc.returncode != 0 and "/liveness/port" in proc.stderr, proc.stderr
    assert "bad" not in support.helm("list", "-q", "--namespace", namespace, kubeconfig=cluster.kubeconfig).stdout
    deployments = kubectl(cluster.kubeconfig, "get", "deploy", "-n", namespace, "-o", "name").stdout
    assert deployments.strip() == ""
