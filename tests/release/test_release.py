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

import yaml

from testbed.cluster import Cluster
from testbed.kubelet import ProcessKubelet
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.helm import alerting, bed, support
from tests.helm.support import kubectl

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


def test_the_operator_installs_from_dist_and_runs_a_migration(
    cluster: Cluster, kubelet: ProcessKubelet, pg15: PostgresServer, s3: S3Server, namespace: str, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    support.run(["bash", support.REPO / "charts" / "release.sh"], env={"DIST": str(dist)}, timeout=900)
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

    bed.register_app_images(kubelet)
    data = bed.make_data(cluster, pg15, s3, namespace)
    with bed.installed_operator(cluster, chart=dist / f"alembic-operator-{VERSION}.tgz") as op:
        installed = support.helm("list", "-n", op.namespace, "-o", "json", kubeconfig=cluster.kubeconfig).stdout
        assert [r["chart"] for r in json.loads(installed)] == [f"alembic-operator-{VERSION}"]
        kubectl(cluster.kubeconfig, "-n", namespace, "apply", "-f", "-", input=bed.doc_run(data, name="from-dist"))
        assert bed.follow(cluster, namespace, "from-dist").phase == "Succeeded"
        page = op.metrics()
    used = {n for e in alerting.dashboard_queries() for n in alerting.metric_names(e)}
    used |= {n for r in alerting.alerts(alerting.rule_groups()).values() for n in alerting.metric_names(r["expr"])}
    missing = used - alerting.exposed_names(page) - alerting.SCRAPE_SERIES
    assert not missing, f"the alerts or the dashboard query metrics the operator does not expose: {sorted(missing)}"
    labels = f'database="{data.db_secret}/DATABASE_URL",run_namespace="{namespace}"'  # sorted, as exported
    for gauge in ("last_success_timestamp_seconds", "backup_size_bytes", "backup_duration_seconds"):
        assert f"alembic_operator_database_{gauge}{{{labels}}}" in page, f"no {gauge} of the run's database"
