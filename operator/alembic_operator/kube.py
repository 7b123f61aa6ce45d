"""The operator's only door to the Kubernetes API (official client, synchronous).

Kopf handlers call these from worker threads. Every call here is one the
operator's RBAC grants (see charts/alembic-operator/templates/rbac.yaml): runs
and their status, Jobs, Pods (read), Events, and for the opt-in write fence
only the ``scale`` subresource of Deployments and StatefulSets (get, patch).
There is deliberately no function that reads a Secret (safety rule 1).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from alembic_operator.api import constants

log = logging.getLogger(__name__)


@functools.cache
def api_client() -> client.ApiClient:
    """An ApiClient from the in-cluster service account, else from KUBECONFIG."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    _send_bearer_token(configuration)
    return client.ApiClient(configuration)


def _send_bearer_token(configuration: client.Configuration) -> None:
    """Make the loaded token actually be sent, now and after every refresh.

    kubernetes==36.0.0's config loaders store the token under
    ``api_key["authorization"]`` while its generated client sends only
    ``api_key["BearerToken"]``: without the copy every request is anonymous.
    """

    def copy(conf: client.Configuration) -> None:
        token = conf.api_key.get("authorization")
        if token:
            conf.api_key["BearerToken"] = token.split(" ", 1)[-1]
            conf.api_key_prefix["BearerToken"] = "Bearer"

    refresh = configuration.refresh_api_key_hook

    def refresh_and_copy(conf: client.Configuration) -> None:
        if refresh is not None:
            refresh(conf)
        copy(conf)

    copy(configuration)
    configuration.refresh_api_key_hook = refresh_and_copy


def _batch() -> client.BatchV1Api:
    return client.BatchV1Api(api_client())


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def _plain(obj: Any) -> Any:
    return api_client().sanitize_for_serialization(obj)


def list_run_jobs(*, namespace: str, run_name: str) -> list[dict[str, Any]]:
    """Jobs labelled as belonging to the run, as plain dicts."""
    jobs = _batch().list_namespaced_job(namespace, label_selector=f"{constants.LABEL_RUN}={run_name}")
    return [_plain(job) for job in jobs.items]


def list_run_pods(*, namespace: str, run_name: str) -> list[dict[str, Any]]:
    """Pods of the run's Jobs (the pod template carries the run label), as plain dicts."""
    pods = _core().list_namespaced_pod(namespace, label_selector=f"{constants.LABEL_RUN}={run_name}")
    return [_plain(pod) for pod in pods.items]


class JobRejected(Exception):
    """The apiserver refused a Job as malformed or invalid (400/422): retrying cannot help."""


class JobNotOwned(JobRejected):
    """A Job with the step's deterministic name exists but its controller is not this run: never adopted."""


def create_job(*, namespace: str, manifest: dict[str, Any]) -> bool:
    """Create a Job; ``False`` when this run's own Job already exists (names are deterministic: a resume).

    An existing Job is adopted only when its controller ownerReference has the run's uid (the one in
    ``manifest``); anyone able to create Jobs could otherwise forge a step's result (issue 14, finding 5).
    """
    name = manifest["metadata"]["name"]
    try:
        _batch().create_namespaced_job(namespace, manifest)
    except ApiException as exc:
        if exc.status == 409:
            existing = _plain(_batch().read_namespaced_job(name, namespace))
            if controller_uid(existing) != controller_uid(manifest):
                raise JobNotOwned(
                    f"Job {name} already exists and was not created for this run "
                    f"(its controller uid is {controller_uid(existing) or 'none'}); refusing to adopt it"
                ) from None
            return False
        # 400: undecodable (e.g. a bad quantity), 422: invalid, 403 from an admission policy: permanent.
        if exc.status in (400, 422) or (exc.status == 403 and "ValidatingAdmissionPolicy" in api_message(exc)):
            raise JobRejected(f"the apiserver refused Job {name}: {api_message(exc)}") from None
        raise
    return True


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of an object's controller ownerReference (the one with ``controller: true``), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def api_message(exc: ApiException) -> str:
    """The human message of an API error (its Status.message), else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except ValueError:
        return str(exc.reason)


def delete_job(*, namespace: str, name: str, propagation: str = "Foreground") -> None:
    """Delete a Job and its Pods; a Job already gone is fine.

    Foreground (a killed step): the Job stays, being deleted, until its Pods are gone, so a reconcile still
    sees a Pod that may hold connections. Background (an ended run's Jobs): the Job goes at once and the
    garbage collector deletes its Pods after it."""
    try:
        _batch().delete_namespaced_job(name, namespace, propagation_policy=propagation)
    except ApiException as exc:
        if exc.status != 404:
            raise


def get_run(*, namespace: str, name: str) -> dict[str, Any] | None:
    """The MigrationRun as a dict, or ``None`` when it is gone."""
    try:
        return cast(
            dict[str, Any],
            _custom().get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
            ),
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_run_status(*, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
    """Merge-patch the status subresource; ``None`` when the run is gone."""
    try:
        return cast(
            dict[str, Any],
            _custom().patch_namespaced_custom_object_status(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name, {"status": status}
            ),
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


class Conflict(Exception):
    """The object changed since the resourceVersion a patch carried (409): read it again."""


def patch_run_metadata(*, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Merge-patch metadata (finalizers); the patched run, ``None`` when it is already gone.

    Raises :class:`Conflict` when ``metadata`` carries a resourceVersion the run no longer has."""
    try:
        return cast(
            dict[str, Any],
            _custom().patch_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name, {"metadata": metadata}
            ),
        )
    except ApiException as exc:
        if exc.status == 409:
            raise Conflict(api_message(exc)) from None
        if exc.status != 404:
            raise
        return None


def create_run(*, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create a MigrationRun; on 409 return the existing one (re-running a hook is a no-op)."""
    try:
        return cast(
            dict[str, Any],
            _custom().create_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, manifest
            ),
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = get_run(namespace=namespace, name=manifest["metadata"]["name"])
    assert existing is not None
    return existing


def _scale_api(kind: str) -> tuple[Any, Any]:
    """The read and patch functions of a workload kind's scale subresource (the write fence's only access)."""
    apps = client.AppsV1Api(api_client())
    return {
        "Deployment": (apps.read_namespaced_deployment_scale, apps.patch_namespaced_deployment_scale),
        "StatefulSet": (apps.read_namespaced_stateful_set_scale, apps.patch_namespaced_stateful_set_scale),
    }[kind]


def read_workload(*, namespace: str, kind: str, name: str) -> dict[str, int] | None:
    """A fenced workload through its scale subresource: ``{replicas, current, pods}``; None when it is gone.

    Write fence (issue #9): ``replicas`` is spec.replicas, ``current`` the
    controller's status.replicas, ``pods`` the pods matching the scale's
    status.selector that have not finished — terminating ones included, since
    a pod being deleted may still write. Uses only ``deployments/scale`` /
    ``statefulsets/scale`` get and ``pods`` list, which the RBAC already grants.
    """
    read, _patch = _scale_api(kind)
    try:
        scale_obj = read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    selector = scale_obj.status.selector if scale_obj.status else None
    pods = 0
    if selector:
        listed = _core().list_namespaced_pod(namespace, label_selector=selector)
        pods = sum(1 for p in listed.items if (p.status.phase if p.status else None) not in ("Succeeded", "Failed"))
    return {
        "replicas": int(scale_obj.spec.replicas or 0) if scale_obj.spec else 0,
        "current": int(scale_obj.status.replicas or 0) if scale_obj.status else 0,
        "pods": pods,
    }


def set_replicas(*, namespace: str, kind: str, name: str, replicas: int) -> bool:
    """Set replicas through the scale subresource (write fence); ``False`` when the workload is gone."""
    _read, patch = _scale_api(kind)
    try:
        patch(name, namespace, {"spec": {"replicas": replicas}})
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def emit_event(*, run: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about the run (what `kubectl describe mrun` shows).

    Best effort: an Event that cannot be posted is logged, never fatal — the
    status holds the same story.
    """
    meta = run["metadata"]
    now = datetime.datetime.now(datetime.UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
        involved_object=client.V1ObjectReference(
            api_version=constants.API_VERSION,
            kind=constants.KIND,
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        ),
        reason=reason,
        message=message[:1024],
        type=type_,
        first_timestamp=now,
        last_timestamp=now,
        event_time=None,
        count=1,
        source=client.V1EventSource(component=constants.MANAGED_BY),
        reporting_component=f"{constants.GROUP}/{constants.MANAGED_BY}",
        reporting_instance=constants.MANAGED_BY,
    )
    try:
        _core().create_namespaced_event(meta["namespace"], event)
    except ApiException as exc:
        log.warning("could not post Event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], exc.status)
