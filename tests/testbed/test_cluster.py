"""The real control plane does what the operator relies on: schema validation, RBAC,
garbage collection, and the versions tools/ pins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client import ApiException

from testbed import procs, tools
from testbed.cluster import Cluster

GROUP = "bed.alembic-operator.dev"


def pinned_kubernetes_version() -> str:
    """The k8s.io/kubernetes version tools/go.mod builds (what the binaries must report)."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", (tools.REPO / "tools" / "go.mod").read_text(), re.M)
    assert match, "k8s.io/kubernetes not found in tools/go.mod"
    return match.group(1)


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["replicas"],
                                    "properties": {"replicas": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"replicas": replicas}}


def test_crd_schema_rejects_an_invalid_object_with_422_and_accepts_a_valid_one(
    cluster: Cluster, namespace: str
) -> None:
    with cluster.api_client() as api:
        extensions = kubernetes.client.ApiextensionsV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        extensions.create_custom_resource_definition(widget_crd())
        try:
            procs.wait_until(
                lambda: any(
                    c.type == "Established" and c.status == "True"
                    for c in (extensions.read_custom_resource_definition(f"widgets.{GROUP}").status.conditions or [])
                ),
                30,
                "the CRD to be established",
            )

            def rejection() -> ApiException | None:
                try:
                    custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", widget("bad", 0))
                except ApiException as error:
                    return None if error.status == 404 else error  # 404: the endpoint is not served yet
                raise AssertionError("a Widget with replicas 0 was accepted")

            error = procs.wait_until(rejection, 30, "the Widget endpoint")
            assert error.status == 422
            assert "spec.replicas" in error.body and "greater than or equal to 1" in error.body

            with pytest.raises(ApiException) as missing:
                custom.create_namespaced_custom_object(
                    GROUP, "v1", namespace, "widgets", {**widget("empty", 1), "spec": {}}
                )
            assert missing.value.status == 422 and "spec.replicas" in missing.value.body

            created = custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", widget("good", 2))
            assert created["spec"] == {"replicas": 2}
        finally:
            extensions.delete_custom_resource_definition(f"widgets.{GROUP}")


def test_deleting_the_owner_garbage_collects_the_owned_job(cluster: Cluster, namespace: str) -> None:
    with cluster.api_client() as api:
        core, batch = kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api)
        owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
        batch.create_namespaced_job(
            namespace,
            {
                "metadata": {
                    "name": "owned",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                    ],
                },
                "spec": {
                    "suspend": True,
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
                    },
                },
            },
        )
        core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

        def job_gone() -> bool:
            try:
                batch.read_namespaced_job("owned", namespace)
            except ApiException as error:
                return error.status == 404
            return False

        procs.wait_until(job_gone, 30, "the garbage collector to delete the Job", interval=0.3)


def test_service_account_is_forbidden_to_list_pods_until_a_role_binding_allows_it(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    with cluster.api_client() as api:
        core, rbac = kubernetes.client.CoreV1Api(api), kubernetes.client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
        kubeconfig = cluster.sa_kubeconfig(namespace, "reader", tmp_path / "reader.kubeconfig")

        denied = cluster.kubectl("get", "pods", "-n", namespace, kubeconfig=kubeconfig, check=False)
        assert denied.returncode != 0
        assert "forbidden" in denied.stderr and f"system:serviceaccount:{namespace}:reader" in denied.stderr
        token = cluster.service_account_token(namespace, "reader")
        with cluster.api_client(token) as reader_api:
            with pytest.raises(ApiException) as forbidden:
                kubernetes.client.CoreV1Api(reader_api).list_namespaced_pod(namespace)
            assert forbidden.value.status == 403

            rbac.create_namespaced_role(
                namespace,
                {
                    "metadata": {"name": "pod-reader"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
                },
            )
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": "reader-reads-pods"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                    "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
                },
            )

            allowed = procs.wait_until(
                lambda: cluster.kubectl("get", "pods", "-n", namespace, "-o", "json", kubeconfig=kubeconfig),
                30,
                "RBAC to allow the ServiceAccount",
            )
            assert json.loads(allowed.stdout)["items"] == []
            _, status, _ = kubernetes.client.CoreV1Api(reader_api).list_namespaced_pod_with_http_info(namespace)
            assert status == 200
            with pytest.raises(ApiException) as still_forbidden:
                kubernetes.client.CoreV1Api(reader_api).list_namespaced_secret(namespace)
            assert still_forbidden.value.status == 403


def test_kubectl_and_apiserver_report_the_kubernetes_version_tools_pins(cluster: Cluster) -> None:
    expected = pinned_kubernetes_version()
    versions = json.loads(cluster.kubectl("version", "--output=json").stdout)
    assert versions["clientVersion"]["gitVersion"] == expected
    assert versions["serverVersion"]["gitVersion"] == expected
