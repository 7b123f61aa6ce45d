"""The backup manifest: what a good backup looks like in ``manifest.json``. Pure: no I/O.

Written only after the dump object is complete, so its presence means the
backup is good (unless ``verification.ok`` is false). Shape (version 1)::

    {"v": 1, "format": "custom", "compression": null, "key": "prefix/run/dump.pgdump",
     "sizeBytes": 123, "sha256": "…", "serverVersion": "15.18", "pgDumpVersion": "15.18",
     "revision": "abc123" | null, "database": "postgresql://app:***@db:5432/shop",
     "startedAt": "…Z", "finishedAt": "…Z", "durationSeconds": 1.2, "rowCountMode": "exact",
     "tables": {"public.task": 3000}, "writeStats": {"public.task": {"n_tup_ins": …}},
     "verification": null | {"method": "restore", "ok": true, "mismatches": []}}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors
from alembic_operator.api.text import parse_timestamp as parse_timestamp  # read what timestamp() writes

VERSION = 1
REQUIRED = ("format", "key", "sizeBytes", "sha256", "tables")


def timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with a Z, to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(
    *,
    fmt: str,
    compression: str | None,
    key: str,
    size_bytes: int,
    sha256: str,
    server_version: str,
    pg_dump_version: str,
    revision: str | None,
    database: str,
    started_at: datetime,
    finished_at: datetime,
    row_count_mode: str,
    tables: dict[str, int],
    write_stats: dict[str, dict[str, int]],
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "format": fmt,
        "compression": compression,
        "key": key,
        "sizeBytes": size_bytes,
        "sha256": sha256,
        "serverVersion": server_version,
        "pgDumpVersion": pg_dump_version,
        "revision": revision,
        "database": database,
        "startedAt": timestamp(started_at),
        "finishedAt": timestamp(finished_at),
        "durationSeconds": round((finished_at - started_at).total_seconds(), 3),
        "rowCountMode": row_count_mode,
        "tables": dict(sorted(tables.items())),
        "writeStats": dict(sorted(write_stats.items())),
        "verification": None,
    }


def validate(value: Any, *, uri: str) -> dict[str, Any]:
    """Check a manifest read back from S3; StorageError naming what is wrong."""
    if not isinstance(value, dict) or value.get("v") != VERSION:
        raise errors.StorageError(f"{uri} is not a version {VERSION} backup manifest")
    missing = [k for k in REQUIRED if k not in value]
    if missing:
        raise errors.StorageError(f"{uri} lacks {', '.join(missing)}")
    if not isinstance(value["tables"], dict):
        raise errors.StorageError(f"{uri}: 'tables' is not an object")
    return value


def is_good(value: Any) -> bool:
    """A complete backup whose restore-verification (if any) did not fail."""
    if not isinstance(value, dict) or value.get("v") != VERSION:
        return False
    verification = value.get("verification")
    return not (isinstance(verification, dict) and verification.get("ok") is False)


def summary(value: dict[str, Any], *, uri: str, manifest_uri: str) -> dict[str, Any]:
    """The backup step's compact result data (fits the 4 KiB termination message)."""
    tables = value.get("tables") or {}
    data = {
        "uri": uri,
        "sizeBytes": value["sizeBytes"],
        "sha256": value["sha256"],
        "format": value["format"],
        "durationSeconds": value.get("durationSeconds"),
        "serverVersion": value.get("serverVersion"),
        "pgDumpVersion": value.get("pgDumpVersion"),
        "revision": value.get("revision"),
        "tables": len(tables),
        "rows": sum(int(v) for v in tables.values()),
        "manifestUri": manifest_uri,
    }
    if value.get("verification") is not None:
        data["verification"] = {"method": value["verification"].get("method"), "ok": value["verification"].get("ok")}
    return data
