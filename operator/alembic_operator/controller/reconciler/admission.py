"""The administrator's policy, decided before a run starts anything (issue 14, findings 2 and 7).

A MigrationRun's spec says where the database goes (``backup.s3``) and what runs
against it (``migrate.image``); :class:`~alembic_operator.controller.settings.AdmissionSettings`
says where an administrator lets it go. :func:`refusal` compares them, in order:

1. the S3 endpoint's scheme: ``https://`` (or AWS's default); ``http://`` only when allowed;
2. the S3 endpoint, then the bucket, against the lists for the run's namespace;
3. the registry of ``migrate.image``.

The first rule broken is the answer, a sentence naming the rule and the setting
that would allow it. :func:`alembic_operator.controller.reconciler.queue.pending`
ends the run Failed with it before any Job exists.

Must not: read the environment, call the API or read the clock (pure, like the reconciler).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from alembic_operator.api.model import RunView
from alembic_operator.controller.settings import AdmissionSettings

#: The registry of an image named without one (``postgres:16``, ``library/app``), as Docker resolves it.
DEFAULT_REGISTRY = "docker.io"


def refusal(*, run: RunView, policy: AdmissionSettings) -> str | None:
    """Why the administrator's policy refuses ``run`` (the first rule broken), or None when it may start."""
    s3 = run.spec.backup.s3
    endpoint = (s3.endpoint or "").strip().rstrip("/")
    # The CRD admits only http:// and https:// endpoints; none at all is AWS's (https).
    if urlsplit(endpoint).scheme.lower() == "http" and not policy.s3_allow_http:
        return (
            f"backup.s3.endpoint {endpoint} is plain http:// (the S3 credentials would travel in clear); "
            "only https:// is allowed unless an administrator sets policy.s3.allowHttp"
        )
    allowed = policy.s3_for(run.namespace)
    if allowed.endpoints and endpoint not in {e.strip().rstrip("/") for e in allowed.endpoints}:
        return (
            f"backup.s3.endpoint {endpoint or '(AWS default)'} is not among the S3 endpoints allowed in namespace "
            f"{run.namespace} ({', '.join(e or '(AWS default)' for e in allowed.endpoints)})"
        )
    if allowed.buckets and s3.bucket not in allowed.buckets:
        return (
            f"backup.s3.bucket {s3.bucket} is not among the buckets allowed in namespace "
            f"{run.namespace} ({', '.join(allowed.buckets)})"
        )
    registry = image_registry(run.spec.migrate.image)
    if policy.registries and registry not in policy.registries:
        return (
            f"migrate.image {run.spec.migrate.image} comes from registry {registry}, not one of the allowed "
            f"registries ({', '.join(policy.registries)})"
        )
    return None


def image_registry(image: str) -> str:
    """The registry part of an image reference: its first path component when that names a host."""
    first, slash, _rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DEFAULT_REGISTRY
