"""The pod template every step Job shares: env, security context, volumes, the user's podTemplate.

Pure: returns dicts, never calls the API (see :mod:`alembic_operator.controller.builders.jobs`).

Safety rule 1: the database URL and S3 keys reach the container only as
``secretKeyRef``; no secret value ever passes through here.

Defaults are compatible with the "restricted" Pod Security Standard:
runAsNonRoot, no privilege escalation, all capabilities dropped, the
RuntimeDefault seccomp profile and a read-only root filesystem with a
writable emptyDir at /tmp. ``spec.podTemplate.securityContext`` and
``containerSecurityContext`` replace the defaults wholesale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic_operator.api import constants, status_progress
from alembic_operator.api.model import RunView
from alembic_operator.controller import naming
from alembic_operator.controller.settings import Settings

CONTAINER_NAME = "step"
TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"
LOCATION_ENV = "ALEMBIC_OPERATOR_LOCATION"
PROGRESS_PORT_NAME = "progress"


def build_labels(*, run: RunView, step: str) -> dict[str, str]:
    """Labels on a step's Job and pod: run, step, database, managed-by."""
    return {
        constants.LABEL_RUN: naming.label_value(run.name),
        constants.LABEL_STEP: step,
        constants.LABEL_DATABASE: naming.database_label(run.spec, run.namespace),
        constants.LABEL_MANAGED_BY: constants.MANAGED_BY,
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def build_env(*, run: RunView) -> list[dict[str, Any]]:
    """The environment common to every step: DATABASE_URL and S3 settings by reference, the location."""
    spec = run.spec
    s3 = spec.backup.s3
    ref = spec.database.url_secret_ref
    env: list[dict[str, Any]] = [_secret_env("DATABASE_URL", ref.name, ref.key)]
    if s3.endpoint:
        env.append({"name": "S3_ENDPOINT", "value": s3.endpoint})
    env.append({"name": "S3_REGION", "value": s3.region})
    env.append({"name": "S3_FORCE_PATH_STYLE", "value": "true" if s3.force_path_style else "false"})
    if s3.server_side_encryption:
        env.append({"name": "S3_SSE", "value": s3.server_side_encryption})
    if s3.kms_key_id:
        env.append({"name": "S3_SSE_KMS_KEY_ID", "value": s3.kms_key_id})
    if s3.expected_bucket_owner:
        env.append({"name": "S3_EXPECTED_BUCKET_OWNER", "value": s3.expected_bucket_owner})
    creds = s3.credentials_secret_ref
    if creds is not None:
        env.append(_secret_env("AWS_ACCESS_KEY_ID", creds.name, creds.access_key_id_key))
        env.append(_secret_env("AWS_SECRET_ACCESS_KEY", creds.name, creds.secret_access_key_key))
    # botocore >= 1.36 sends checksums many S3-compatible servers reject (docs/design.md, "Known pitfalls").
    env.append({"name": "AWS_REQUEST_CHECKSUM_CALCULATION", "value": "when_required"})
    env.append({"name": "AWS_RESPONSE_CHECKSUM_VALIDATION", "value": "when_required"})
    env.append(
        {
            "name": LOCATION_ENV,
            "value": naming.location(spec=spec, namespace=run.namespace, run_name=run.name, run_uid=run.uid),
        }
    )
    env.append({"name": "TMPDIR", "value": TMP_PATH})
    env.append({"name": "HOME", "value": TMP_PATH})
    return env


def _tools_env(settings: Settings) -> list[dict[str, Any]]:
    """Which majors the operator image's client tools lack SSL for (found at the operator's start), for every
    step: those in the app's image have no tools to ask, and a run no backup could undo must not start."""
    majors = settings.jobs.tools_without_ssl
    if majors is None:  # unknown: each step asks its own tools
        return []
    return [{"name": constants.ENV_TOOLS_WITHOUT_SSL, "value": ",".join(str(m) for m in majors)}]


def build_pod_security_context(*, run: RunView, settings: Settings) -> dict[str, Any]:
    """The pod's security context: the user's, or the restricted default."""
    if run.spec.pod_template.security_context is not None:
        return dict(run.spec.pod_template.security_context)
    ctx: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if settings.jobs.run_as_user is not None:
        ctx["runAsUser"] = settings.jobs.run_as_user
    if settings.jobs.run_as_group is not None:
        ctx["runAsGroup"] = settings.jobs.run_as_group
    if settings.jobs.fs_group is not None:
        ctx["fsGroup"] = settings.jobs.fs_group
    return ctx


def build_container_security_context(*, run: RunView) -> dict[str, Any]:
    """The container's security context: the user's, or the restricted default."""
    if run.spec.pod_template.container_security_context is not None:
        return dict(run.spec.pod_template.container_security_context)
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_pod_template(
    *,
    run: RunView,
    step: str,
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    working_dir: str | None = None,
    settings: Settings,
) -> dict[str, Any]:
    """A Job's ``spec.template``: one container, restartPolicy Never, the user's podTemplate applied."""
    pt = run.spec.pod_template
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": list(command),
        "env": build_env(run=run) + _tools_env(settings),
        "securityContext": build_container_security_context(run=run),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": TMP_PATH}],
    }
    if step in status_progress.PROGRESS_STEPS:  # declared so NetworkPolicies and readers can name it
        container["ports"] = [{"name": PROGRESS_PORT_NAME, "containerPort": status_progress.PORT, "protocol": "TCP"}]
    if args:
        container["args"] = list(args)
    if working_dir:
        container["workingDir"] = working_dir
    if settings.jobs.image_pull_policy:
        container["imagePullPolicy"] = settings.jobs.image_pull_policy
    if pt.resources is not None:
        container["resources"] = dict(pt.resources)

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": pt.service_account_name is not None,
        "securityContext": build_pod_security_context(run=run, settings=settings),
        "containers": [container],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}],
    }
    if pt.service_account_name:
        pod_spec["serviceAccountName"] = pt.service_account_name
    if pt.node_selector:
        pod_spec["nodeSelector"] = dict(pt.node_selector)
    if pt.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in pt.tolerations]
    if pt.affinity is not None:
        pod_spec["affinity"] = dict(pt.affinity)
    if pt.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [dict(s) for s in pt.image_pull_secrets]
    if pt.priority_class_name:
        pod_spec["priorityClassName"] = pt.priority_class_name

    labels = {**pt.labels, **build_labels(run=run, step=step)}  # ours win: the operator selects by them
    metadata: dict[str, Any] = {"labels": labels}
    if pt.annotations:
        metadata["annotations"] = dict(pt.annotations)
    return {"metadata": metadata, "spec": pod_spec}
