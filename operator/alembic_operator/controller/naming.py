"""Names the operator derives for a run: Job names, label values, the S3 location, the database id.

Pure and deterministic: the same run uid, step and attempt always give the same
Job name, which is what makes creating a Job idempotent across operator
restarts (a second create answers 409 AlreadyExists).

"The database" is identified by (namespace, Secret name, key): the operator
never reads the URL inside (safety rule 1), so two runs naming the same Secret
key are the same database and are serialised.

Must not: do I/O or read the clock.
"""

from __future__ import annotations

import hashlib
import re

from alembic_operator.api import constants
from alembic_operator.api.model import MigrationRunSpec

#: Annotation on a Job: the attempt number of its step (1 unless a Job vanished).
ANNOTATION_ATTEMPT = f"{constants.GROUP}/attempt"
#: Annotation on a Job: the uid of the MigrationRun it belongs to.
ANNOTATION_RUN_UID = f"{constants.GROUP}/run-uid"

_HASH_LEN = 5
_INVALID = re.compile(r"[^a-z0-9-]+")


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def sanitise(text: str) -> str:
    """Lowercase DNS-1123 label characters only; runs of anything else become one ``-``."""
    return _INVALID.sub("-", text.lower()).strip("-")


def _truncate(text: str, length: int) -> str:
    return text[:length].rstrip("-.")


def job_name(*, run_name: str, run_uid: str, step: str, attempt: int = 1) -> str:
    """``<run-name-truncated>-<step>-<hash5>``: ≤ 63 characters, DNS-1123, deterministic."""
    suffix = f"-{step}-{_digest(run_uid, step, str(attempt), length=_HASH_LEN)}"
    base = _truncate(sanitise(run_name), constants.MAX_NAME - len(suffix)) or "run"
    return base + suffix


def label_value(text: str) -> str:
    """A valid label value for ``text``: itself when it fits, else truncated plus a hash."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    if clean == text and len(text) <= constants.MAX_NAME:
        return text
    return _truncate(clean, constants.MAX_NAME - 9).strip("-._") + "-" + _digest(text, length=8)


def database_id(spec: MigrationRunSpec) -> str:
    """The database's folder name under the namespace in S3: ``<secret>-<key>-<hash6>``."""
    ref = spec.database.url_secret_ref
    readable = _truncate(sanitise(f"{ref.name}-{ref.key}"), 48) or "db"
    return f"{readable}-{_digest(ref.name, ref.key, length=6)}"


def database_label(spec: MigrationRunSpec, namespace: str) -> str:
    """Label value naming the database across the cluster (namespace, Secret, key); ≤ 63 characters.

    Put on Jobs and used by the handler to find the runs it must serialise with.
    """
    ref = spec.database.url_secret_ref
    readable = _truncate(sanitise(f"{ref.name}-{ref.key}"), 40) or "db"
    return f"{readable}-{_digest(namespace, ref.name, ref.key, length=10)}"


def location(*, spec: MigrationRunSpec, namespace: str, run_name: str, run_uid: str) -> str:
    """The run's S3 folder: ``s3://{bucket}/{prefix}/{namespace}/{database-id}/{run-name}-{uid[:8]}/``."""
    s3 = spec.backup.s3
    parts = [s3.prefix.strip("/"), namespace, database_id(spec), f"{run_name}-{run_uid[:8]}"]
    return f"s3://{s3.bucket}/" + "/".join(p for p in parts if p) + "/"


def human_size(size_bytes: int | None) -> str | None:
    """``12.3 MiB`` for the Backup printer column."""
    if size_bytes is None:
        return None
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None  # pragma: no cover
