"""Every API call ``kubectl alembic`` makes, as the user: runs, step pods, their logs, who am I.

The writes are the two a person makes about a held restore: the approval annotation
(its value must be the user's name — the chart's admission policy checks it, and the
verb ``approve`` on migrationruns) and deleting the held run.

Must not: read Secrets or anything in S3; change a run's spec or status.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from alembic_operator import kube
from alembic_operator.api import constants
from alembic_operator.client.plugin.connecting import Connection


class NotFound(Exception):
    """The run named on the command line does not exist in the namespace."""


def _custom(conn: Connection) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(conn.api)


def get_run(conn: Connection, name: str) -> dict[str, Any]:
    """The MigrationRun as a dict; :class:`NotFound` names the namespace when it is not there."""
    try:
        return cast(
            dict[str, Any],
            _custom(conn).get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, conn.namespace, constants.PLURAL, name
            ),
        )
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"no MigrationRun {name} in namespace {conn.namespace}") from None
        raise


def list_runs(conn: Connection) -> list[dict[str, Any]]:
    """Every MigrationRun in the namespace."""
    listed = _custom(conn).list_namespaced_custom_object(
        constants.GROUP, constants.VERSION, conn.namespace, constants.PLURAL
    )
    return cast(list[dict[str, Any]], listed.get("items") or [])


def list_step_pods(conn: Connection, run_name: str) -> list[dict[str, Any]]:
    """The pods of the run's step Jobs (labelled with the run), as plain dicts."""
    pods = client.CoreV1Api(conn.api).list_namespaced_pod(
        conn.namespace, label_selector=f"{constants.LABEL_RUN}={run_name}"
    )
    return [conn.api.sanitize_for_serialization(pod) for pod in pods.items]


def read_log(conn: Connection, pod: str, container: str) -> str:
    """A container's log through ``pods/log`` (the kubelet serves it via the apiserver)."""
    return cast(str, client.CoreV1Api(conn.api).read_namespaced_pod_log(pod, conn.namespace, container=container))


def whoami(conn: Connection) -> str:
    """The user name the apiserver sees for these credentials (SelfSubjectReview, ``kubectl auth whoami``)."""
    review = client.AuthenticationV1Api(conn.api).create_self_subject_review(client.V1SelfSubjectReview())
    return str(review.status.user_info.username)


def annotate(conn: Connection, name: str, annotations: dict[str, str]) -> None:
    """Merge-patch the run's annotations (the admission policy decides whether the user may)."""
    _custom(conn).patch_namespaced_custom_object(
        constants.GROUP,
        constants.VERSION,
        conn.namespace,
        constants.PLURAL,
        name,
        {"metadata": {"annotations": annotations}},
    )


def delete_run(conn: Connection, name: str) -> None:
    """Delete the run; the operator lets a running step finish, lifts a fence and releases it."""
    _custom(conn).delete_namespaced_custom_object(
        constants.GROUP, constants.VERSION, conn.namespace, constants.PLURAL, name
    )


def api_error(exc: ApiException) -> str:
    """The apiserver's message for a refused call (an admission policy's reason, RBAC's denial)."""
    return f"{exc.status} {kube.api_message(exc)}"
