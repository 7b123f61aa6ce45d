"""The charts render what the brief promises, checked on `helm template` output (no cluster).

- helm lint passes for the operator, the hook library and the example app;
- the chart's CRD template renders exactly crds/ (generated from the model), kept on uninstall;
- the operator's RBAC is exactly alembic_operator.controller.rbac.OPERATOR_RULES, cluster-wide by
  default and per namespace with watchNamespaces; the hook's Role is exactly HOOK_RULES;
- the Deployment has the shape a Kopf operator needs (1 replica, Recreate, probes, ...);
- values.schema.json rejects bad values at `helm template` (the same check `helm install` runs);
- the hook objects carry Helm and Argo CD hook annotations, ordered by weight, and the
  MigrationRun is named after the release revision (or the spec hash for Argo CD).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alembic_operator.controller import rbac
from alembic_operator.controller.settings import Settings
from tests.helm import support
from tests.helm.support import HOOK_CHART, OPERATOR_CHART, find, render, template


def test_helm_lint_passes_for_every_chart(app_chart: Path) -> None:
    """helm lint (strict) accepts the operator chart, the library chart and the example app chart."""
    for chart in (OPERATOR_CHART, HOOK_CHART, app_chart):
        out = support.helm("lint", "--strict", chart).stdout
        assert "1 chart(s) linted, 0 chart(s) failed" in out, out


def test_the_chart_renders_exactly_the_generated_crd_kept_on_uninstall() -> None:
    """Default values: templates/crds.yaml renders the CRD of crds/ (generated from the model), object for
    object, plus helm.sh/resource-policy: keep; crds.keep=false drops only that; crds.install=false renders none."""
    generated = [yaml.safe_load(p.read_text()) for p in sorted((support.REPO / "crds").glob("*.yaml"))]
    assert generated, "crds/ is empty"
    (crd,) = find(render(OPERATOR_CHART), "CustomResourceDefinition")
    assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert [crd] == generated, "charts/alembic-operator/files/crds/ drifted from crds/: copy it again"
    (unkept,) = find(render(OPERATOR_CHART, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert [unkept] == generated
    assert not find(render(OPERATOR_CHART, "--set", "crds.install=false"), "CustomResourceDefinition")
    assert not (OPERATOR_CHART / "crds").exists(), "a chart crds/ folder is never upgraded by Helm"


def test_operator_rbac_is_exactly_operator_rules_cluster_wide_by_default() -> None:
    """Default values: one ClusterRole with OPERATOR_RULES, bound to the chart's ServiceAccount; no Role."""
    objs = render(OPERATOR_CHART, namespace="ops")
    (role,) = find(objs, "ClusterRole")
    assert role["rules"] == rbac.OPERATOR_RULES
    assert not any(r.get("resources") == ["secrets"] or "secrets" in r.get("resources", []) for r in role["rules"])
    (binding,) = find(objs, "ClusterRoleBinding")
    (sa,) = find(objs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ops"}]
    assert not find(objs, "Role") and not find(objs, "RoleBinding")


def _cluster_scoped(rule: dict) -> bool:
    return rule["apiGroups"] == ["apiextensions.k8s.io"] or (
        rule["apiGroups"] == [""] and any(r in ("namespaces", "nodes", "persistentvolumes") for r in rule["resources"])
    )


def test_watch_namespaces_gives_a_role_per_namespace_and_namespace_flags() -> None:
    """watchNamespaces [a, b]: the namespaced rules in a Role in a and in b, only the cluster-scoped
    (read-only) rules cluster-wide, together exactly OPERATOR_RULES; --namespace a --namespace b."""
    objs = render(OPERATOR_CHART, "--set", "watchNamespaces={team-a,team-b}", namespace="ops")
    namespaced = [r for r in rbac.OPERATOR_RULES if not _cluster_scoped(r)]
    cluster_scoped = [r for r in rbac.OPERATOR_RULES if _cluster_scoped(r)]
    (cluster_role,) = find(objs, "ClusterRole")
    assert cluster_role["rules"] == cluster_scoped
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in cluster_role["rules"])
    roles = find(objs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(r["rules"] == namespaced for r in roles)
    bindings = find(objs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    (sa,) = find(objs, "ServiceAccount")
    subjects = [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ops"}]
    for b in bindings:
        assert b["roleRef"]["kind"] == "Role" and b["subjects"] == subjects
    (cluster_binding,) = find(objs, "ClusterRoleBinding")
    assert cluster_binding["subjects"] == subjects
    (deploy,) = find(objs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def test_deployment_is_one_replica_recreate_non_root_with_probe_metrics_and_own_image() -> None:
    """The Deployment: 1 replica, Recreate, liveness /healthz:8081, metrics 8080, hardened, ALEMBIC_OPERATOR_IMAGE."""
    objs = render(
        OPERATOR_CHART,
        "--set",
        "image.repository=reg.example/alembic-operator",
        "--set",
        "image.tag=1.2.3",
        "--set",
        "image.pullPolicy=Always",
    )
    (deploy,) = find(objs, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (sa,) = find(objs, "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["image"] == "reg.example/alembic-operator:1.2.3" and c["imagePullPolicy"] == "Always"
    assert c["args"][c["args"].index("operator") + 1 :][:2] == [
        "--metrics-port=8080",
        "--liveness=http://0.0.0.0:8081/healthz",
    ]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 8080, "healthz": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["ALEMBIC_OPERATOR_IMAGE"] == "reg.example/alembic-operator:1.2.3"
    (svc,) = find(objs, "Service")
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


def test_default_image_is_the_test_beds_and_servicemonitor_is_off_by_default() -> None:
    """Defaults: alembic-operator:dev, no ServiceMonitor; metrics.serviceMonitor.enabled adds one."""
    objs = render(OPERATOR_CHART)
    (deploy,) = find(objs, "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "alembic-operator:dev"
    assert not find(objs, "ServiceMonitor")
    objs = render(
        OPERATOR_CHART,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prom",
    )
    (sm,) = find(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("args", "retain_seconds", "retain_failed"),
    [
        ([], 300, True),
        (["--set", "stepJobs.retainSeconds=86400"], 86400, True),  # not 8.64e+04: Helm reads numbers as floats
        (["--set", "stepJobs.retainSeconds=null", "--set", "stepJobs.retainFailed=false"], None, False),
    ],
    ids=["default", "a-day", "forever-and-failed-too"],
)
def test_step_jobs_values_reach_the_operator_as_it_reads_them(
    args: list[str], retain_seconds: int | None, retain_failed: bool
) -> None:
    """What the chart renders into the Deployment is what Settings.from_env makes of it."""
    (deploy,) = find(render(OPERATOR_CHART, *args), "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    jobs = Settings.from_env({k: v for k, v in env.items() if v is not None}).jobs
    assert (jobs.retain_seconds, jobs.retain_failed) == (retain_seconds, retain_failed), env


@pytest.mark.parametrize(
    ("args", "limit"),
    [([], 10), (["--set", "maxRunningRuns=40"], 40), (["--set", "maxRunningRuns=null"], None)],
    ids=["default", "forty", "unlimited"],
)
def test_max_running_runs_reaches_the_operator_as_it_reads_it(args: list[str], limit: int | None) -> None:
    """maxRunningRuns renders to what Settings.from_env reads as the operator-wide limit (null: none)."""
    (deploy,) = find(render(OPERATOR_CHART, *args), "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert Settings.from_env({k: v for k, v in env.items() if v is not None}).reconcile.max_running_runs == limit


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--set", "replicaCount=2"], "/replicaCount"),
        (["--set", "replicaCount=one"], "/replicaCount"),
        (["--set", "metrics.port=http"], "/metrics/port"),
        (["--set", "metrics.port=70000"], "/metrics/port"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "watchNamespaces=team-a"], "/watchNamespaces"),
        (["--set", "replicas=1"], "replicas"),
        (["--set", "metrics.serviceMonitor.enabled=yes"], "/metrics/serviceMonitor/enabled"),
        (["--set", "stepJobs.retainSeconds=-1"], "/stepJobs/retainSeconds"),
        (["--set-string", "stepJobs.retainSeconds=5m"], "/stepJobs/retainSeconds"),
        (["--set", "maxRunningRuns=0"], "/maxRunningRuns"),
    ],
    ids=[
        "two-replicas",
        "replicas-not-int",
        "port-not-int",
        "port-too-big",
        "pull-policy",
        "namespace-name",
        "namespaces-not-list",
        "unknown-key",
        "bool-as-string",
        "retain-negative",
        "retain-not-seconds",
        "no-run-at-all",
    ],
)
def test_schema_rejects_bad_values_at_template_time(args: list[str], complaint: str) -> None:
    """values.schema.json turns a typo or a wrong type into a helm error naming the value."""
    proc = template(OPERATOR_CHART, *args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "values don't meet the specifications of the schema" in proc.stderr or complaint in proc.stderr, proc.stderr
    assert complaint in proc.stderr, proc.stderr


def test_notes_say_how_to_create_a_first_run() -> None:
    """NOTES.txt shows a kubectl apply of a MigrationRun and `kubectl get mrun`."""
    out = support.helm("install", "x", OPERATOR_CHART, "--dry-run=client", "--namespace", "ops").stdout
    notes = out.split("NOTES:", 1)[1]
    assert "kubectl apply -f -" in notes and "kind: MigrationRun" in notes and "kubectl get mrun" in notes


# -- the hook library, through the example app ------------------------------------------------


def _hooks(app_chart: Path, *args: str) -> list[dict]:
    return [
        o
        for o in render(app_chart, *args, release="shop", namespace="shop-ns")
        if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
    ]


def test_hook_objects_are_pre_install_pre_upgrade_hooks_ordered_before_the_job(app_chart: Path) -> None:
    """SA, Role, RoleBinding, ConfigMap and Job are Helm and Argo CD hooks; the Job has the highest weight."""
    hooks = _hooks(app_chart)
    assert sorted(o["kind"] for o in hooks) == ["ConfigMap", "Job", "Role", "RoleBinding", "ServiceAccount"]
    weights = {}
    for o in hooks:
        ann = o["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation"
        assert ann["argocd.argoproj.io/hook"] == "PreSync"
        assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert ann["argocd.argoproj.io/sync-wave"] == ann["helm.sh/hook-weight"]
        weights[o["kind"]] = int(ann["helm.sh/hook-weight"])
    assert max(weights[k] for k in ("ServiceAccount", "Role", "RoleBinding", "ConfigMap")) < weights["Job"]
    assert weights["RoleBinding"] > weights["Role"]


def test_hook_role_is_exactly_hook_rules_and_the_job_runs_alembic_operator_run(app_chart: Path) -> None:
    """The hook's Role is HOOK_RULES; the Job (backoffLimit 0) runs `run` for <release>-<revision>."""
    hooks = _hooks(app_chart)
    (role,) = find(hooks, "Role")
    assert role["rules"] == rbac.HOOK_RULES
    (binding,) = find(hooks, "RoleBinding")
    (sa,) = find(hooks, "ServiceAccount")
    assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
    (job,) = find(hooks, "Job")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == sa["metadata"]["name"]
    (c,) = pod["containers"]
    script = " ".join(c["command"] + c["args"])
    assert "alembic-operator run --manifest /dev/stdin" in script
    env = {e["name"]: e for e in c["env"]}
    assert env["MIGRATIONRUN_NAME"]["value"] == "shop-1"
    (cm,) = find(hooks, "ConfigMap")
    assert env["MIGRATIONRUN_MANIFEST"]["valueFrom"]["configMapKeyRef"] == {
        "name": cm["metadata"]["name"],
        "key": "migrationrun.yaml",
    }


def test_hook_manifest_is_a_valid_migrationrun_built_from_the_app_values(app_chart: Path) -> None:
    """The ConfigMap's MigrationRun uses the app image, DB Secret and S3 values, and passes the model."""
    from alembic_operator.api import model

    hooks = _hooks(
        app_chart,
        "--set",
        "image.tag=1.4.2",
        "--set",
        "database.secretName=shop-db",
        "--set",
        "migration.backup.s3.endpoint=http://s3.local:7070",
        "--set",
        "migration.spec.rollback.onForeignWrites=restore",
    )
    (cm,) = find(hooks, "ConfigMap")
    run = yaml.safe_load(cm["data"]["migrationrun.yaml"])
    assert run["apiVersion"] == "alembic-operator.dev/v1alpha1" and run["kind"] == "MigrationRun"
    assert run["metadata"] == {**run["metadata"], "name": "shop-1", "namespace": "shop-ns"}
    spec = model.parse_spec(run["spec"])
    assert spec.migrate.image == "example-app:1.4.2"
    assert spec.database.url_secret_ref.name == "shop-db"
    assert spec.backup.s3.endpoint == "http://s3.local:7070"
    assert spec.backup.s3.credentials_secret_ref is not None
    assert spec.rollback.on_foreign_writes == "restore"


def test_run_name_follows_the_revision_or_the_spec_hash(app_chart: Path) -> None:
    """nameBy revision: <release>-<revision>; nameBy spec: same name for the same spec, new for a new image."""

    def run_name(*args: str) -> str:
        (cm,) = find(_hooks(app_chart, *args), "ConfigMap")
        return yaml.safe_load(cm["data"]["migrationrun.yaml"])["metadata"]["name"]

    assert run_name() == "shop-1"
    a = run_name("--set", "migration.nameBy=spec")
    assert a == run_name("--set", "migration.nameBy=spec") and a.startswith("shop-") and len(a) == len("shop-") + 10
    assert run_name("--set", "migration.nameBy=spec", "--set", "image.tag=2.0") != a
    assert run_name("--set", "migration.runName=fixed") == "fixed"


def test_hook_is_left_out_when_disabled_and_values_are_checked(app_chart: Path) -> None:
    """migration.enabled=false renders no hook; a missing bucket or a bad nameBy fails helm template."""
    assert not _hooks(app_chart, "--set", "migration.enabled=false")
    proc = template(app_chart, "--set", "migration.nameBy=time", check=False)
    assert proc.returncode != 0 and "nameBy" in proc.stderr
    proc = template(app_chart, "--set", "migration.backup.s3.bucket=", check=False)
    assert proc.returncode != 0 and "bucket" in proc.stderr


def test_app_deployment_waits_for_the_schema_in_an_init_container(app_chart: Path) -> None:
    """The app's pods start with `alembic-operator wait` on the app image, DATABASE_URL from the Secret."""
    objs = render(app_chart, release="shop")
    (deploy,) = find(objs, "Deployment")
    assert "helm.sh/hook" not in (deploy["metadata"].get("annotations") or {})
    pod = deploy["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["alembic-operator", "wait"]
    assert init["image"] == pod["containers"][0]["image"] == "example-app:dev"
    assert init["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "example-app-db", "key": "DATABASE_URL"}
