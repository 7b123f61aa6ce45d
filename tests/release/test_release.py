"""`make release` (charts/release.sh) builds what a user installs, and the operator installs from it.

One test on the real bed: the artifacts under a fresh dist/ pass `sha256sum -c`; each image archive
is an OCI layout whose blobs match their digests, tagged with the version and "dev"; the one-file
manifest holds every kind an install needs; the operator installed with `helm install` from the
packaged chart runs the README's MigrationRun to Succeeded; and its real /metrics page exposes
every metric the chart's alerts and dashboard query (tests/helm/alerting.py).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from testbed import operating
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.helm import alerting, bed, support
from tests.helm.support import kubectl

ALLOW_HTTP = "ALEMBIC_OPERATOR_S3_ALLOW_HTTP"
VERSION = yaml.safe_load((support.OPERATOR_CHART / "Chart.yaml").read_text())["appVersion"]
INSTALL_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
    "Deployment",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def _check_oci_archive(path: Path) -> None:
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("./index.json"))  # type: ignore[arg-type]
        refs = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
        assert refs == {VERSION, "dev"}, refs
        blobs = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("./blobs/sha256/")]
        assert {m["digest"].split(":")[1] for m in index["manifests"]} <= {Path(b.name).name for b in blobs}
        for blob in blobs:
            digest = hashlib.sha256(tar.extractfile(blob).read()).hexdigest()  # type: ignore[union-attr]
            assert digest == Path(blob.name).name, f"{path.name}: {blob.name} does not match its digest"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh dist/ from `make release`'s script, built once for this module's tests."""
    built = tmp_path_factory.mktemp("release") / "dist"
    support.run(["bash", support.REPO / "charts" / "release.sh"], env={"DIST": str(built)}, timeout=900)
    return built


def test_the_operator_installs_from_dist_and_runs_a_migration(
    cluster: Cluster, kubelet: Node, pg15: PostgresServer, s3: S3Server, namespace: str, dist: Path
) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == sorted(
        [
            "SHA256SUMS",
            f"alembic-operator-{VERSION}.tgz",
            f"alembic-operator-hook-{VERSION}.tgz",
            f"example-app-{VERSION}.tgz",
            f"alembic-operator-{VERSION}.yaml",
            f"alembic-operator-image-{VERSION}.oci.tar",
            f"example-app-image-{VERSION}.oci.tar",
        ]
    ), names
    checked = support.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist).stdout
    assert checked.count(": OK") == len(names) - 1, checked
    for image in ("alembic-operator", "example-app"):
        _check_oci_archive(dist / f"{image}-image-{VERSION}.oci.tar")
    manifest = [d for d in yaml.safe_load_all((dist / f"alembic-operator-{VERSION}.yaml").read_text()) if d]
    assert {d["kind"] for d in manifest} == INSTALL_KINDS, sorted({d["kind"] for d in manifest})
    assert manifest[0]["kind"] == "Namespace"

    data = _bed_data(cluster, kubelet, pg15, s3, namespace)
    with bed.installed_operator(cluster, chart=dist / f"alembic-operator-{VERSION}.tgz") as op:
        installed = support.helm("list", "-n", op.namespace, "-o", "json", kubeconfig=cluster.kubeconfig).stdout
        assert [r["chart"] for r in json.loads(installed)] == [f"alembic-operator-{VERSION}"]
        _run_to_succeeded(cluster, data, "from-dist")
        page = op.metrics()
    used = {n for e in alerting.dashboard_queries() for n in alerting.metric_names(e)}
    used |= {n for r in alerting.alerts(alerting.rule_groups()).values() for n in alerting.metric_names(r["expr"])}
    missing = used - alerting.exposed_names(page) - alerting.SCRAPE_SERIES
    assert not missing, f"the alerts or the dashboard query metrics the operator does not expose: {sorted(missing)}"
    labels = f'database="{data.db_secret}/DATABASE_URL",run_namespace="{namespace}"'  # sorted, as exported
    for gauge in ("last_success_timestamp_seconds", "backup_size_bytes", "backup_duration_seconds"):
        assert f"alembic_operator_database_{gauge}{{{labels}}}" in page, f"no {gauge} of the run's database"


def _bed_data(cluster: Cluster, kubelet: Node, pg15: PostgresServer, s3: S3Server, namespace: str) -> bed.Data:
    bed.register_app_images(kubelet)
    return bed.make_data(cluster, pg15, s3, namespace)


def _run_to_succeeded(cluster: Cluster, data: bed.Data, name: str) -> None:
    """The README's MigrationRun, applied with kubectl, ends Succeeded."""
    run = yaml.safe_load(bed.doc_run(data, name=name))
    run["spec"]["plan"] = {"destructive": "allow"}  # no plan: the run backs up even when the database is at head
    kubectl(cluster.kubeconfig, "-n", data.namespace, "apply", "-f", "-", input=yaml.safe_dump(run))
    followed = bed.follow(cluster, data.namespace, name)
    assert followed.phase == "Succeeded", json.dumps(followed.final.get("status"), indent=1)[:3000]


def test_the_operator_installs_from_the_one_file_manifest_and_runs_a_migration(
    cluster: Cluster,
    kubelet: Node,
    pg15: PostgresServer,
    s3: S3Server,
    namespace: str,
    dist: Path,
    operator: operating.OperatorProcess,
) -> None:
    """`kubectl apply --server-side -f dist/alembic-operator-<version>.yaml`, as the README's install from
    the artifacts says (CloudNativePG's way), then the README's run. The bed's S3 is plain http: the
    administrator allows it on the Deployment (policy.s3.allowHttp's variable), nothing else changes."""
    path = dist / f"alembic-operator-{VERSION}.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    operator_ns, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    data = _bed_data(cluster, kubelet, pg15, s3, namespace)
    kubectl(cluster.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", path)
    try:
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env[ALLOW_HTTP] == "false", "the manifest allows http S3 by default"
        kubectl(cluster.kubeconfig, "-n", operator_ns, "set", "env", f"deployment/{name}", f"{ALLOW_HTTP}=true")
        kubectl(cluster.kubeconfig, "-n", operator_ns, "rollout", "status", f"deployment/{name}", "--timeout=180s")
        with bed.host_operator_paused(operator):  # the manifest's operator is the only one acting
            _run_to_succeeded(cluster, data, "from-manifest")
    finally:
        # Everything the manifest made but the CRD: the session's other tests keep their MigrationRuns.
        for doc in reversed(docs):
            if doc["kind"] != "CustomResourceDefinition":
                meta = doc["metadata"]
                where = ["-n", meta["namespace"]] if meta.get("namespace") else []
                kubectl(cluster.kubeconfig, *where, "delete", doc["kind"], meta["name"], "--wait=false", check=False)
