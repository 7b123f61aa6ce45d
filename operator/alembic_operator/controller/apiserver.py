"""The operator's door to the Kubernetes API: plain JSON over urllib3, with the credentials Kopf logs in with.

Why not the official client, which the command-line client (:mod:`alembic_operator.kube`) uses:
importing ``kubernetes`` loads ~870 generated modules, about 40 MiB of the operator's resident
memory (issue 18: < 200 MiB with 1,000 runs), for a dozen calls that send and receive plain dicts.
The credentials are :func:`.connecting.credentials`', the same as Kopf's watches use; a 401
(a rotated service-account token) logs in again once.

Every call here is one the operator's RBAC grants (charts/alembic-operator/templates/rbac.yaml):
runs and their status, Jobs, Pods (read), Events, and for the opt-in write fence only the
``scale`` subresource of Deployments and StatefulSets. There is deliberately no call that reads
a Secret (safety rule 1). Handlers call these from worker threads (urllib3's pool is thread-safe).

Must not: import ``kubernetes``; decide anything (errors are raised for the caller to judge).
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote, urlencode

import urllib3

from alembic_operator.api import constants
from alembic_operator.api.refs import controller_uid
from alembic_operator.controller import connecting

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
CREDENTIALS_MAX_AGE = 60.0
"""Seconds before the credentials are read again (a projected service-account token is rotated on disk)."""

log = logging.getLogger(__name__)

_RUNS = f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/{{ns}}/{constants.PLURAL}"


class ApiError(Exception):
    """The apiserver answered with an error status; ``message`` is its Status message (else the HTTP reason)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class JobRejected(Exception):
    """The apiserver refused a Job as malformed or invalid (400/422): retrying cannot help."""


class JobNotOwned(JobRejected):
    """A Job with the step's deterministic name exists but its controller is not this run: never adopted."""


class Conflict(Exception):
    """The object changed since the resourceVersion a patch carried (409): read it again."""


class _Connection:
    """A pool to the apiserver and the headers that authenticate; read again when older than a minute or on 401."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._tls: tuple[Any, ...] | None = None
        self.server, self.headers, self.pool = "", dict[str, str](), cast(urllib3.PoolManager, None)

    def current(self, *, again: bool = False) -> _Connection:
        with self._lock:
            if again or time.monotonic() - self._read_at > CREDENTIALS_MAX_AGE:
                info = connecting.credentials()
                tls = (info.server, info.ca_path, info.ca_data, info.insecure, info.certificate_path,
                       info.certificate_data, info.private_key_path, info.private_key_data)  # fmt: skip
                if tls != self._tls:
                    self.pool = urllib3.PoolManager(maxsize=16, ssl_context=info.as_ssl_context(), timeout=TIMEOUT)
                    self._tls = tls
                self.server = str(info.server).rstrip("/")
                self.headers = {**info.as_http_headers(), "Accept": "application/json"}
                self._read_at = time.monotonic()
            return self


_connection = _Connection()


def request(
    method: str, path: str, *, body: Any = None, query: Mapping[str, str] | None = None, content_type: str = ""
) -> dict[str, Any]:
    """One call; the decoded JSON answer. Raises :class:`ApiError` for an error status."""
    url = path + (f"?{urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    for again in (False, True):
        conn = _connection.current(again=again)
        headers = dict(conn.headers)
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
        answer = conn.pool.request(method, conn.server + url, body=data, headers=headers, retries=False)
        if answer.status != 401 or again:
            break
    if answer.status >= 400:
        raise ApiError(answer.status, _message(answer.data, answer.reason))
    return cast(dict[str, Any], json.loads(answer.data or b"{}"))


def _message(data: bytes, reason: str | None) -> str:
    try:
        return str(json.loads(data or b"{}").get("message") or reason)
    except (ValueError, AttributeError):
        return str(reason)


def _jobs(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"


def _run(namespace: str, name: str, sub: str = "") -> str:
    return _RUNS.format(ns=quote(namespace)) + f"/{quote(name)}" + sub


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods"


def _selecting(run_name: str) -> dict[str, str]:
    return {"labelSelector": f"{constants.LABEL_RUN}={run_name}"}


def list_run_jobs(*, namespace: str, run_name: str) -> list[dict[str, Any]]:
    """Jobs labelled as belonging to the run."""
    return list(request("GET", _jobs(namespace), query=_selecting(run_name)).get("items") or [])


def list_run_pods(*, namespace: str, run_name: str) -> list[dict[str, Any]]:
    """Pods of the run's Jobs (the pod template carries the run label)."""
    return list(request("GET", _pods(namespace), query=_selecting(run_name))["items"])


def create_job(*, namespace: str, manifest: dict[str, Any]) -> bool:
    """Create a Job; ``False`` when this run's own Job already exists (names are deterministic: a resume).

    An existing Job is adopted only when its controller ownerReference has the run's uid (the one in
    ``manifest``); anyone able to create Jobs could otherwise forge a step's result (issue 14, finding 5).
    """
    name = manifest["metadata"]["name"]
    try:
        request("POST", _jobs(namespace), body=manifest)
    except ApiError as exc:
        if exc.status == 409:
            existing = request("GET", f"{_jobs(namespace)}/{quote(name)}")
            if controller_uid(existing) != controller_uid(manifest):
                raise JobNotOwned(
                    f"Job {name} already exists and was not created for this run "
                    f"(its controller uid is {controller_uid(existing) or 'none'}); refusing to adopt it"
                ) from None
            return False
        # 400: undecodable (e.g. a bad quantity), 422: invalid, 403 from an admission policy: permanent.
        if exc.status in (400, 422) or (exc.status == 403 and "ValidatingAdmissionPolicy" in exc.message):
            raise JobRejected(f"the apiserver refused Job {name}: {exc.message}") from None
        raise
    return True


def delete_job(*, namespace: str, name: str, propagation: str = "Foreground") -> None:
    """Delete a Job and its Pods; a Job already gone is fine.

    Foreground (a killed step): the Job stays, being deleted, until its Pods are gone, so a reconcile still
    sees a Pod that may hold connections. Background (an ended run's Jobs): the Job goes at once and the
    garbage collector deletes its Pods after it."""
    try:
        request("DELETE", f"{_jobs(namespace)}/{quote(name)}", body={"propagationPolicy": propagation})
    except ApiError as exc:
        if exc.status != 404:
            raise


def _on_run(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A call on one run (a body is a merge patch): ``None`` when the run is gone (404), :class:`Conflict`
    when the resourceVersion the patch carries is no longer the run's (409)."""
    try:
        return request(method, path, body=body, content_type=MERGE_PATCH if body is not None else "")
    except ApiError as exc:
        if exc.status == 409:
            raise Conflict(exc.message) from None
        if exc.status == 404:
            return None
        raise


def get_run(*, namespace: str, name: str) -> dict[str, Any] | None:
    """The MigrationRun, or ``None`` when it is gone."""
    return _on_run("GET", _run(namespace, name))


def patch_run_status(
    *, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> dict[str, Any] | None:
    """Merge-patch the status subresource; ``None`` when the run is gone.

    With ``resource_version``, only over that version of the run: :class:`Conflict` when it changed since."""
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return _on_run("PATCH", _run(namespace, name, "/status"), body)


def patch_run_metadata(*, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Merge-patch metadata (finalizers); the patched run, ``None`` when it is already gone.

    Raises :class:`Conflict` when ``metadata`` carries a resourceVersion the run no longer has."""
    return _on_run("PATCH", _run(namespace, name), {"metadata": metadata})


def _scale(namespace: str, kind: str, name: str) -> str:
    plural = {"Deployment": "deployments", "StatefulSet": "statefulsets"}[kind]
    return f"/apis/apps/v1/namespaces/{quote(namespace)}/{plural}/{quote(name)}/scale"


def read_workload(*, namespace: str, kind: str, name: str) -> dict[str, int] | None:
    """A fenced workload through its scale subresource: ``{replicas, current, pods}``; None when it is gone.

    Write fence (issue #9): ``replicas`` is spec.replicas, ``current`` the controller's status.replicas,
    ``pods`` the pods matching the scale's status.selector that have not finished — terminating ones
    included, since a pod being deleted may still write. Uses only ``deployments/scale`` /
    ``statefulsets/scale`` get and ``pods`` list, which the RBAC already grants.
    """
    try:
        scale = request("GET", _scale(namespace, kind, name))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    status = scale.get("status") or {}
    pods = 0
    if status.get("selector"):
        found = request("GET", _pods(namespace), query={"labelSelector": status["selector"]})
        pods = sum(1 for p in found["items"] if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
    return {
        "replicas": int((scale.get("spec") or {}).get("replicas") or 0),
        "current": int(status.get("replicas") or 0),
        "pods": pods,
    }


def set_replicas(*, namespace: str, kind: str, name: str, replicas: int) -> bool:
    """Set replicas through the scale subresource (write fence); ``False`` when the workload is gone."""
    try:
        request("PATCH", _scale(namespace, kind, name), body={"spec": {"replicas": replicas}}, content_type=MERGE_PATCH)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def emit_event(*, run: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about the run (what ``kubectl describe mrun`` shows).

    Best effort: an Event that cannot be posted is logged, never fatal — the status holds the same story."""
    meta = run["metadata"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": constants.API_VERSION,
            "kind": constants.KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": constants.MANAGED_BY},
        "reportingComponent": f"{constants.GROUP}/{constants.MANAGED_BY}",
        "reportingInstance": constants.MANAGED_BY,
    }
    try:
        request("POST", f"/api/v1/namespaces/{quote(meta['namespace'])}/events", body=event)
    except (ApiError, urllib3.exceptions.HTTPError) as exc:
        log.warning("could not post Event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], exc)
