"""The pieces the e2e tests of tests/helm share: app images, the installed operator, a database and bucket
with their Secrets, and following a MigrationRun while recording every status it goes through."""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import operating, ports
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.pytest_data import Database
from testbed.s3 import S3Server
from tests.helm import support
from tests.helm.support import REPO, helm, kubectl

ALEMBIC = REPO / "alembic"
IMAGES = {
    # v1: the example app at its head, 0004
    "example-app:1.0": ALEMBIC / "example",
    # v2: the example plus a data migration 0005 (no sleep)
    "example-app:2.0": ALEMBIC / "scenarios" / "slow",
    # a release whose migration 0005 commits but loses rows: verify fails, the operator restores
    "example-app:broken": ALEMBIC / "scenarios" / "creates-table-then-fails-verify",
    # a release whose migration 0005 raises (already in the offline plan): Failed, database unchanged
    "example-app:raises": ALEMBIC / "scenarios" / "raises",
}
TERMINAL = ("Succeeded", "Failed", "RolledBack", "RollbackFailed", "RollbackHeld")


def register_app_images(kubelet: Node) -> None:
    """App images of the tests on the node: the operator's image and variants of the built
    example-app image, each with its app's directory as WORKDIR (and ALEMBIC_CONFIG), as a
    ``FROM example-app:dev`` Dockerfile would make them."""
    operating.bed_runtime()  # a retired runtime asked for fails here, loudly
    kubelet.register_images({"alembic-operator:dev": {}}, built_image="alembic-operator:dev")
    variants = {}
    for image, workdir in IMAGES.items():
        inside = f"{operating.IMAGE_APP_DIR}/{workdir.relative_to(ALEMBIC)}"
        env = {"SCENARIO_SLEEP_SECONDS": "0", "ALEMBIC_CONFIG": f"{inside}/alembic.ini"}
        variants[image] = {"workingDir": inside, "env": env}
    kubelet.register_images(variants, built_image="example-app:dev")


@dataclass
class Operator:
    """The operator installed by `helm install` from charts/alembic-operator."""

    release: str
    namespace: str
    service_account: str
    metrics_port: int
    liveness_port: int
    cluster: Cluster | None = None

    def host(self) -> str:
        """Where the operator's pod listens: its pod IP on the node (the bed's network namespace routes
        to the pods' bridge); loopback only for an Operator made without a cluster."""
        if self.cluster is None:
            return "127.0.0.1"
        pod = support.wait_for(
            lambda: (
                (p := pod_of(self.cluster, self.namespace, "app.kubernetes.io/name=alembic-operator"))  # type: ignore[arg-type]
                and (p.get("status") or {}).get("podIP")
                and p
            ),
            60,
            "the operator pod's IP",
        )
        return str(pod["status"]["podIP"])

    def url(self, port: int, path: str) -> str:
        return f"http://{self.host()}:{port}{path}"

    def metrics(self) -> str:
        """The /metrics page of the operator's pod (Prometheus text; read values with operating.metric_sample)."""
        url = self.url(self.metrics_port, "/metrics")
        _code, body = support.wait_for(
            lambda: (r := http_get(url))[0] == 200 and r,
            60,
            "the operator's /metrics",
        )
        return str(body)


def install_command(namespace: str) -> list[str]:
    """The docs' `helm install` of the operator (the README), in ``namespace``."""
    text = support.doc_example("install-operator").replace("\\\n", " ")
    argv = shlex.split(next(line for line in text.splitlines() if line.startswith("helm install")))
    assert argv[:4] == ["helm", "install", "alembic-operator", "charts/alembic-operator"], argv
    argv[argv.index("--namespace") + 1] = namespace
    return [*argv[1:3], str(REPO / argv[3]), *argv[4:]]


@contextlib.contextmanager
def installed_operator(cluster: Cluster, *extra: str, chart: Path | None = None) -> Iterator[Operator]:
    """The docs' `helm install alembic-operator charts/alembic-operator --wait`, in a fresh namespace.

    The bed's cluster is shared by every test of a session (and other releases), so the CRD is applied
    from crds/ as a cluster administrator would, and the release is told not to own it
    (``crds.install=false``); tests/helm/test_crd_upgrade.py installs and upgrades it with the chart.
    ``chart`` replaces charts/alembic-operator (e.g. the packaged chart of dist/)."""
    namespace = f"alembic-operator-{secrets.token_hex(3)}"
    metrics, liveness = ports.free_port(), ports.free_port()
    ensure_crd(cluster)
    argv = install_command(namespace)
    if chart is not None:
        argv[2] = str(chart)
    try:
        helm(
            *argv,
            "--set",
            "crds.install=false",
            "--timeout",
            "180s",
            # Not 8080/8081 (needed when pods shared the host network; now it exercises the port settings).
            "--set",
            f"metrics.port={metrics}",
            "--set",
            f"liveness.port={liveness}",
            # The bed's S3 speaks plain http: an administrator's explicit allowance (policy.s3.allowHttp).
            "--set",
            "policy.s3.allowHttp=true",
            *extra,
            kubeconfig=cluster.kubeconfig,
        )
        yield Operator(
            release="alembic-operator",
            namespace=namespace,
            service_account="alembic-operator",
            metrics_port=metrics,
            liveness_port=liveness,
            cluster=cluster,
        )
    finally:
        helm(
            "uninstall",
            "alembic-operator",
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "60s",
            kubeconfig=cluster.kubeconfig,
            check=False,
        )
        kubectl(cluster.kubeconfig, "delete", "namespace", namespace, "--wait=false", check=False)


@contextlib.contextmanager
def host_operator_paused(host: operating.OperatorProcess) -> Iterator[None]:
    """The session's host operator (testbed.pytest_operator's ``operator``) stopped meanwhile.

    It watches every namespace: a worker that ran an e2e module before would have two operators act
    on the chart-installed operator's runs, each counting the step transitions it applied itself (so
    the chart operator's /metrics missed some) and carrying a run through the chart operator's upgrade.
    """
    host.stop()
    try:
        yield
    finally:
        host.start()


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except OSError as error:
        return 0, str(error)


@dataclass
class Data:
    """A fresh database on PostgreSQL 15 and a bucket, and their Secrets in ``namespace``."""

    database: Database
    bucket: str
    endpoint: str
    namespace: str
    db_secret: str = "example-app-db"
    s3_secret: str = "example-app-s3"


def make_data(cluster: Cluster, pg: PostgresServer, s3: S3Server, namespace: str) -> Data:
    pg.start()
    name = pg.create_database()
    db = Database(name=name, url=pg.url(name), server=pg)
    s3.start()
    bucket = s3.create_bucket()
    data = Data(database=db, bucket=bucket, endpoint=s3.endpoint, namespace=namespace)
    kubectl(
        cluster.kubeconfig,
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        data.db_secret,
        f"--from-literal=DATABASE_URL={db.url}",
    )
    kubectl(
        cluster.kubeconfig,
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        data.s3_secret,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3.secret_key}",
    )
    return data


def doc_run(data: Data, *, name: str, image: str = "example-app:1.0") -> str:
    """The docs' kubectl example (README, ``migrationrun``) with the test bed's bucket, endpoint, image and name."""
    import yaml

    run = yaml.safe_load(support.doc_example("migrationrun"))
    run["metadata"]["name"] = name
    run["spec"]["migrate"]["image"] = image
    run["spec"]["backup"]["s3"].update(bucket=data.bucket, endpoint=data.endpoint)
    return str(yaml.safe_dump(run))


def get_run(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    proc = kubectl(cluster.kubeconfig, "-n", namespace, "get", "migrationrun", name, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


@dataclass
class Followed:
    """A run followed to a terminal phase: the last object and every distinct status seen on the way."""

    final: dict[str, Any]
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return str((self.final.get("status") or {}).get("phase"))

    def phases(self) -> list[str]:
        return [str((o.get("status") or {}).get("phase")) for o in self.seen]


def follow(cluster: Cluster, namespace: str, name: str, timeout: float = 300) -> Followed:
    """Poll a MigrationRun until a terminal phase, keeping each distinct (phase, conditions) snapshot."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    last_key = None
    while True:
        obj = get_run(cluster, namespace, name)
        if obj is not None:
            status = obj.get("status") or {}
            key = json.dumps(
                [status.get("phase"), status.get("conditions"), status.get("observedGeneration")], sort_keys=True
            )
            if key != last_key:
                seen.append(obj)
                last_key = key
            if status.get("phase") in TERMINAL:
                return Followed(final=obj, seen=seen)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"MigrationRun {namespace}/{name} not terminal after {timeout:.0f}s; "
                f"phases seen: {[(o.get('status') or {}).get('phase') for o in seen]}; "
                f"last: {json.dumps((obj or {}).get('status'), indent=1)[:3000]}"
            )
        time.sleep(0.3)


def check_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(Argo CD health, kstatus) of a real object."""
    return support.argocd_health(obj)["status"], support.kstatus(obj)


def expected_health(obj: dict[str, Any]) -> tuple[str, str]:
    """What the Lua and kstatus must say for a real object, from its phase and generation alone."""
    status = obj.get("status") or {}
    phase = status.get("phase")
    if status.get("observedGeneration") is not None and status["observedGeneration"] < obj["metadata"]["generation"]:
        return "Progressing", "InProgress"
    if phase == "Succeeded":
        return "Healthy", "Current"
    if phase in ("Failed", "RolledBack", "RollbackFailed", "RollbackHeld"):
        return "Degraded", "Failed"
    if not status.get("conditions"):
        return "Progressing", "Current"  # kstatus: no conditions at all is Current (the documented gap)
    return "Progressing", "InProgress"


def save_all(followed: Followed, directory: Path, label: str) -> None:
    from tests.helm import statuses

    for i, obj in enumerate(followed.seen):
        statuses.save(obj, directory, f"{label}-{i:02d}-{(obj.get('status') or {}).get('phase')}")


def pod_of(cluster: Cluster, namespace: str, selector: str) -> dict[str, Any] | None:
    out = kubectl(cluster.kubeconfig, "-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
    items = json.loads(out)["items"]
    # After a rollout the replaced pod may still be terminating beside the new one: the live one first.
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return (live or items)[0] if items else None


def ensure_crd(cluster: Cluster) -> None:
    """Install the generated CRD (server-side apply, idempotent) and wait until it is Established."""
    kubectl(cluster.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", REPO / "crds")
    support.wait_for(
        lambda: (
            kubectl(
                cluster.kubeconfig,
                "get",
                "crd/migrationruns.alembic-operator.dev",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
                check=False,
            ).stdout
            == "True"
        ),
        60,
        "the MigrationRun CRD to be Established",
    )


def sa_can(cluster: Cluster, op: Operator, *args: str) -> bool:
    who = f"system:serviceaccount:{op.namespace}:{op.service_account}"
    proc = kubectl(cluster.kubeconfig, "auth", "can-i", *args, "--as", who, check=False)
    return proc.stdout.strip() == "yes"
