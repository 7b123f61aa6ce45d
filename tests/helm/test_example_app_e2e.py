"""Door 2 (the Helm hook) and door 3 (Flux-style GitOps) end to end, with the operator installed
by its chart in namespaced mode (watchNamespaces: a Role and RoleBinding, --namespace).

1. `helm install` of charts/example-app (v1.0): the pre-install hook Job runs
   `alembic-operator run`, the MigrationRun <release>-1 Succeeds (0004), then the Deployment's
   pods pass their `alembic-operator wait` init container;
2. `helm upgrade --wait` to an image whose migration raises: the hook fails, so does
   `helm upgrade`; the Deployment is still v1.0, the database restored (0004, same rows),
   the run RolledBack and the hook Job kept;
3. `helm upgrade --wait` to v2.0: migrated to 0005 before the Deployment changed, new pods
   start — no deadlock between the hook, `--wait` and the init container;
4. re-running the hook for a revision whose run Succeeded returns at once (Argo CD re-syncs);
5. Flux: the migrations Kustomization's directory applied server-side, waited for with the
   real kstatus library, then the app's directory.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.example import support as app
from tests.helm import bed, support
from tests.helm.support import helm, kubectl


@pytest.fixture(scope="module")
def app_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"shop-{secrets.token_hex(3)}"
    kubectl(cluster.kubeconfig, "create", "namespace", name)
    support.wait_for(
        lambda: kubectl(cluster.kubeconfig, "-n", name, "get", "sa", "default", check=False).returncode == 0,
        30,
        "the default ServiceAccount",
    )
    yield name
    kubectl(cluster.kubeconfig, "delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubelet: Node, app_namespace: str) -> Iterator[bed.Operator]:
    bed.register_app_images(kubelet)
    with bed.installed_operator(cluster, "--set", f"watchNamespaces={{{app_namespace}}}") as op:
        yield op


@pytest.fixture
def data(cluster: Cluster, pg15: PostgresServer, s3: S3Server, app_namespace: str) -> Iterator[bed.Data]:
    data = bed.make_data(cluster, pg15, s3, app_namespace)
    yield data
    for secret in (data.db_secret, data.s3_secret):
        kubectl(cluster.kubeconfig, "-n", app_namespace, "delete", "secret", secret, check=False)


def _values(tmp_path: Path, data: bed.Data) -> Path:
    """The docs' app values with the test bed's S3 endpoint and bucket."""
    values = yaml.safe_load(support.doc_example("app-values"))
    values["migration"]["backup"]["s3"].update(bucket=data.bucket, endpoint=data.endpoint)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _deployment(cluster: Cluster, ns: str, name: str) -> dict:
    return json.loads(kubectl(cluster.kubeconfig, "-n", ns, "get", "deploy", name, "-o", "json").stdout)


def _available(cluster: Cluster, ns: str, name: str, image: str) -> bool:
    d = _deployment(cluster, ns, name)
    st = d.get("status") or {}
    return (
        d["spec"]["template"]["spec"]["containers"][0]["image"] == image
        and st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas") == 1
        and st.get("availableReplicas") == 1
        and not st.get("unavailableReplicas")
    )


def test_helm_install_and_upgrades_migrate_in_the_hook_and_a_failed_one_stops_the_rollout(
    cluster: Cluster,
    kubelet: Node,
    operator: bed.Operator,
    data: bed.Data,
    app_chart: Path,
    tmp_path: Path,
) -> None:
    ns, kc = data.namespace, cluster.kubeconfig
    values = _values(tmp_path, data)

    # 1. install: the pre-install hook migrates the empty database to 0004, then the app starts
    t0 = time.monotonic()
    helm("install", "shop", app_chart, "-n", ns, "-f", values, "--wait", "--timeout", "300s", kubeconfig=kc)
    install_s = time.monotonic() - t0
    run1 = bed.get_run(cluster, ns, "shop-1")
    assert run1 and run1["status"]["phase"] == "Succeeded", run1 and run1.get("status")
    assert bed.check_health(run1) == ("Healthy", "Current")
    assert app.revision(data.database) == app.HEAD
    assert _available(cluster, ns, "shop", "example-app:1.0")
    app.seed(data.database, rows=50)
    counts = app.counts(data.database)

    # 2. a release whose migration raises: helm upgrade fails, nothing of the new release rolls out
    proc = helm(
        "upgrade",
        "shop",
        app_chart,
        "-n",
        ns,
        "-f",
        values,
        "--set",
        "image.tag=broken",
        "--wait",
        "--timeout",
        "300s",
        kubeconfig=kc,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    assert "pre-upgrade hooks failed" in proc.stderr or "hook" in proc.stderr, proc.stderr
    run2 = bed.get_run(cluster, ns, "shop-2")
    assert run2 and run2["status"]["phase"] == "RolledBack", run2 and run2.get("status")
    assert bed.check_health(run2) == ("Degraded", "Failed")
    assert app.revision(data.database) == app.HEAD and app.counts(data.database) == counts
    assert _available(cluster, ns, "shop", "example-app:1.0")
    job = json.loads(kubectl(kc, "-n", ns, "get", "job", "shop-migration", "-o", "json").stdout)
    assert job["metadata"]["labels"]["alembic-operator.dev/run"] == "shop-2"
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in job["status"].get("conditions", []))
    history = json.loads(helm("history", "shop", "-n", ns, "-o", "json", kubeconfig=kc).stdout)
    assert [h["status"] for h in history] == ["deployed", "failed"]

    # 3. the next release migrates to 0005 in the hook, then its pods pass the init container
    t0 = time.monotonic()
    helm(
        "upgrade",
        "shop",
        app_chart,
        "-n",
        ns,
        "-f",
        values,
        "--set",
        "image.tag=2.0",
        "--wait",
        "--timeout",
        "300s",
        kubeconfig=kc,
    )
    upgrade_s = time.monotonic() - t0
    run3 = bed.get_run(cluster, ns, "shop-3")
    assert run3 and run3["status"]["phase"] == "Succeeded", run3 and run3.get("status")
    assert app.revision(data.database) == "0005"
    assert _available(cluster, ns, "shop", "example-app:2.0")
    assert app.counts(data.database)["project"] == counts["project"] + 1  # 0005 inserted one row

    # 4. the hook re-run for a revision that already Succeeded returns at once (an Argo CD re-sync)
    job_name = "rerun-shop-3"
    hook_job = json.loads(kubectl(kc, "-n", ns, "get", "job", "shop-migration", "-o", "json").stdout)
    template = hook_job["spec"]["template"]
    template["metadata"]["labels"] = {"alembic-operator.dev/run": "shop-3"}
    rerun = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name},
        "spec": {"backoffLimit": 0, "template": template},
    }
    t0 = time.monotonic()
    kubectl(kc, "-n", ns, "create", "-f", "-", input=json.dumps(rerun))
    support.wait_for(
        lambda: (
            json.loads(kubectl(kc, "-n", ns, "get", "job", job_name, "-o", "json").stdout)
            .get("status", {})
            .get("succeeded")
            == 1
        ),
        60,
        "the re-run hook Job",
    )
    rerun_s = time.monotonic() - t0
    runs = json.loads(kubectl(kc, "-n", ns, "get", "mrun", "-o", "json").stdout)["items"]
    assert sorted(r["metadata"]["name"] for r in runs) == ["shop-1", "shop-2", "shop-3"]
    pod = bed.pod_of(cluster, ns, f"job-name={job_name}")
    log = kubelet.pod_log(ns, pod["metadata"]["name"], "run")
    assert "following existing" in log and "Succeeded" in log, log
    print(f"\nhelm install {install_s:.1f}s, helm upgrade {upgrade_s:.1f}s, hook re-run {rerun_s:.1f}s")
    helm("uninstall", "shop", "-n", ns, "--wait", kubeconfig=kc, check=False)


def _overlay(tmp_path: Path, base: Path, namespace: str, patches: list[dict]) -> Path:
    import os

    overlay = tmp_path / base.name
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(base, overlay)],
                "patches": patches,
            }
        )
    )
    return overlay


def test_flux_door_applies_migrations_waits_for_kstatus_current_then_the_app(
    cluster: Cluster, operator: bed.Operator, data: bed.Data, tmp_path: Path
) -> None:
    """What kustomize-controller does for the example: build and server-side apply the migrations,
    wait with kstatus (InProgress ... Current), then apply the app, whose pods start at once."""
    ns, kc = data.namespace, cluster.kubeconfig
    flux = support.GITOPS / "flux"
    s3_patch = {
        "target": {"kind": "MigrationRun"},
        "patch": json.dumps(
            [
                {"op": "replace", "path": "/spec/backup/s3/bucket", "value": data.bucket},
                {"op": "replace", "path": "/spec/backup/s3/endpoint", "value": data.endpoint},
            ]
        ),
    }
    migrations = _overlay(tmp_path, flux / "migrations", ns, [s3_patch])
    kubectl(kc, "apply", "--server-side", "--field-manager=kustomize-controller", "-k", migrations)
    verdicts: list[str] = []

    def current() -> bool:
        obj = bed.get_run(cluster, ns, "example-app-1-0")
        verdict = support.kstatus(obj)
        if not verdicts or verdicts[-1] != verdict:
            verdicts.append(verdict)
        assert verdict != "Failed", json.dumps(obj.get("status"), indent=1)
        return verdict == "Current" and (obj.get("status") or {}).get("phase") == "Succeeded"

    support.wait_for(current, 300, "the MigrationRun to be kstatus Current", interval=0.3)
    assert "InProgress" in verdicts, verdicts
    assert app.revision(data.database) == app.HEAD

    app_dir = _overlay(tmp_path, flux / "app", ns, [])
    kubectl(kc, "apply", "--server-side", "--field-manager=kustomize-controller", "-k", app_dir)
    support.wait_for(lambda: _available(cluster, ns, "example-app", "example-app:1.0"), 120, "the app Deployment")
    deploy = _deployment(cluster, ns, "example-app")
    assert support.kstatus(deploy) == "Current"
    kubectl(kc, "-n", ns, "delete", "deploy", "example-app", check=False)
