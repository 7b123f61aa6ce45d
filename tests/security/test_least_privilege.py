"""Least privilege, proven on the real apiserver: the operator's effective permissions are exactly
alembic_operator.controller.rbac.OPERATOR_RULES (no Secrets at all), and the operator's and the steps' Pods are
admitted in a namespace enforcing the "restricted" Pod Security Standard."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from alembic_operator.controller import rbac
from testbed import tools
from tests.faults.support import on_pg15
from tests.helm import support as helm

RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
#: What every authenticated user may do (system:basic-user, system:discovery): asking about itself.
SELF_REVIEWS = {
    ("selfsubjectaccessreviews", "authorization.k8s.io"),
    ("selfsubjectrulesreviews", "authorization.k8s.io"),
    ("selfsubjectreviews", "authentication.k8s.io"),
}


def _as_operator(operator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.binary("kubectl")), "--kubeconfig", str(operator.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (res, group, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for res in rule["resources"]
        for verb in rule["verbs"]
    }


def _effective(operator, namespace: str) -> set[tuple[str, str, str]]:
    """(resource, group, verb) from `kubectl auth can-i --list` run as the operator's ServiceAccount."""
    out = _as_operator(operator, "auth", "can-i", "--list", "-n", namespace, "-o", "json")
    if out.returncode == 0 and out.stdout.lstrip().startswith("{"):
        rules = json.loads(out.stdout)["resourceRules"]
        found = set()
        for rule in rules:
            for res in rule.get("resources") or []:
                for group in rule.get("apiGroups") or [""]:
                    for verb in rule["verbs"]:
                        found.add((res, group, verb))
        return found
    # Older kubectl: the table form ("Resources  Non-Resource URLs  Resource Names  Verbs").
    out = _as_operator(operator, "auth", "can-i", "--list", "-n", namespace)
    assert out.returncode == 0, out.stderr
    found = set()
    for line in out.stdout.splitlines()[1:]:
        match = re.match(r"^(\S+)\s+\[[^\]]*\]\s+\[[^\]]*\]\s+\[([^\]]*)\]", line)
        if match:
            # "deployments.apps/scale" → resource "deployments/scale", group "apps"
            name, _, sub = match.group(1).partition("/")
            resource, _, group = name.partition(".")
            for verb in match.group(2).split():
                found.add((f"{resource}/{sub}" if sub else resource, group, verb))
    return found


class _Nobody:
    """A ServiceAccount bound to nothing: what every authenticated identity may do on this cluster."""

    def __init__(self, kubeconfig) -> None:
        self.kubeconfig = kubeconfig


def test_the_operator_can_do_exactly_what_its_rules_allow_and_nothing_with_secrets(
    cluster, operator, namespace, tmp_path
):
    allowed = _granted(rbac.OPERATOR_RULES)
    effective = _effective(operator, namespace)
    baseline = _effective(_Nobody(cluster.sa_kubeconfig(namespace, "default", tmp_path / "nobody")), namespace)
    assert not any(res == "secrets" for res, _g, _v in baseline), baseline
    extra = {p for p in effective - baseline if (p[0], p[1]) not in SELF_REVIEWS} - allowed
    missing = allowed - effective
    assert extra == set(), f"the operator may do more than OPERATOR_RULES: {sorted(extra)}"
    assert missing == set(), f"OPERATOR_RULES grants that the operator lacks: {sorted(missing)}"
    assert not any(res == "secrets" or res == "*" for res, _g, _v in effective)
    for verb in ("get", "list", "watch"):
        for scope in (["-A"], ["-n", namespace], ["-n", "kube-system"]):
            answer = _as_operator(operator, "auth", "can-i", verb, "secrets", *scope)
            assert answer.stdout.strip() == "no" and answer.returncode != 0, (verb, scope, answer.stdout)


def test_the_chart_grants_exactly_the_operator_rules():
    rendered = [d for d in yaml.safe_load_all(helm.template(helm.OPERATOR_CHART).stdout) if d]
    roles = [d for d in rendered if d["kind"] in ("ClusterRole", "Role")]
    assert roles, "the chart renders no (Cluster)Role"
    for role in roles:
        assert _granted(role["rules"]) == _granted(rbac.OPERATOR_RULES), role["metadata"]["name"]


@on_pg15
def test_step_pods_are_admitted_under_the_restricted_pod_security_standard_and_the_run_succeeds(app, database):
    app.cluster.kubectl("label", "namespace", app.namespace, RESTRICTED, "--overwrite")
    app.apply(app.manifest("restricted"))
    status = app.wait("restricted")["status"]
    assert status["phase"] == "Succeeded", status
    events = json.loads(app.cluster.kubectl("-n", app.namespace, "get", "events", "-o", "json").stdout)["items"]
    refused = [e["message"] for e in events if e["reason"] == "FailedCreate"]
    assert refused == [], refused
    pods = json.loads(app.cluster.kubectl("-n", app.namespace, "get", "pods", "-o", "json").stdout)["items"]
    steps = {p["metadata"]["labels"]["alembic-operator.dev/step"] for p in pods}
    assert steps >= {"plan", "backup", "migrate", "verify"}, steps


def test_the_operator_pod_from_the_chart_is_admitted_under_the_restricted_standard(cluster, namespace):
    cluster.kubectl("label", "namespace", namespace, RESTRICTED, "--overwrite")
    rendered = [d for d in yaml.safe_load_all(helm.template(helm.OPERATOR_CHART, namespace=namespace).stdout) if d]
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    cluster.kubectl("-n", namespace, "create", "serviceaccount", account)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "operator",
            "namespace": namespace,
            "labels": deployment["spec"]["template"]["metadata"]["labels"],
        },
        "spec": deployment["spec"]["template"]["spec"],
    }
    admitted = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert admitted.returncode == 0 and "PodSecurity" not in admitted.stderr, admitted.stderr
    # The control: the same namespace refuses a pod that is not restricted, so the check above means something.
    loose = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "loose", "namespace": namespace},
        "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "busybox"}]},
    }
    refused = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(loose), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
