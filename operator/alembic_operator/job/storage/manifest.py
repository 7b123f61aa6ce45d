"""The backup manifest: what a good backup looks like in ``manifest.json``. Pure: no I/O.

Written only after the dump object is complete, so its presence means the
backup is good (unless ``verification.ok`` is false). Stored shape (version 2)::

    {"v": 2, "format": "custom", "compression": null, "key": "prefix/run/dump.pgdump",
     "sizeBytes": 123, "sha256": "…", "serverVersion": "15.18", "pgDumpVersion": "15.18",
     "revision": "abc123" | null, "database": "postgresql://app:***@db:5432/shop",
     "identity": {"systemIdentifier": "7412…", "database": "shop"},
     "startedAt": "…Z", "finishedAt": "…Z", "durationSeconds": 1.2, "rowCountMode": "exact",
     "tables": [{"name": ["public", "task"], "rows": 3000, "oid": 16390}],
     "writeStats": [{"name": ["public", "task"], "n_tup_ins": …}],
     "verification": null | {"method": "restore", "ok": true, "mismatches": []},
     "databaseState": {…}, "owners": [{"role": "app", "objects": 12, "named": ["schema shop", …]}],
     "scope": null | ["public", "shop"], "schemas": ["audit", "public", "shop"], "roles": {"app": "<md5>"},
     "codec": "zstd", "codecLevel": 1, "archiveBytes": 456, "writeStatsSettled": true,
     "chunks": {"bytes": 8388608, "sha256": ["…", …]}}

``codec`` says how the stored object relates to pg_dump's archive (:mod:`alembic_operator.job.storage.codecs`:
``zstd`` is pg_dump ``-Z0`` compressed on the way; absent or ``none`` is pg_dump's output as is, round-1
backups included); ``sizeBytes`` and ``sha256`` are always the stored object's, ``archiveBytes`` pg_dump's
archive once decoded. ``writeStatsSettled``: whether ``writeStats`` (read just before the snapshot) had
settled (:mod:`alembic_operator.job.database.snapshot_counts`). ``chunks``: the SHA-256 of each
``bytes``-sized piece of the stored object, in order; the backup reports :func:`chunk_list_sha256` of
the list (status.backup.chunksSha256), and a restore bound to that digest checks each piece before
pg_restore reads it, so it streams instead of downloading first (absent in older backups).

``databaseState`` is what pg_dump without ``--create`` leaves out
(:mod:`alembic_operator.job.database.database_state`); ``owners`` the roles owning the
backup's objects (:mod:`alembic_operator.job.database.owners`: a restore refuses, before
touching anything, when its role may not act as one of them); ``scope`` the application's
schemas when the backup was limited to them and ``schemas`` every schema at backup time
(:mod:`alembic_operator.job.database.scope`: what a restore may drop); ``roles`` each role's
fingerprint (:mod:`alembic_operator.job.database.roles`: reported, never restored). All
optional when read.

Table names are ``[schema, table]`` pairs (a name may hold dots: see
:mod:`alembic_operator.job.database.identifiers`). ``identity`` binds the backup
to the server and database it was taken from (the restore checks it).
Version 1 (round 1: ``"tables": {"schema.table": rows}``, no identity) is still
read: :func:`validate` decodes both into one in-memory form whose ``tables``
and ``writeStats`` are keyed by :func:`identifiers.label`; :func:`encode`
writes version 2.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors
from alembic_operator.api.text import parse_timestamp as parse_timestamp  # read what timestamp() writes
from alembic_operator.job.database import identifiers

VERSION = 2
#: Versions this module reads.
READABLE = (1, 2)
REQUIRED = ("format", "key", "sizeBytes", "sha256", "tables")
_HEX64 = frozenset("0123456789abcdef")


def chunk_list_sha256(digests: list[str]) -> str:
    """The digest that binds a chunk list: SHA-256 of the hex digests, one per line."""
    return hashlib.sha256("".join(f"{d}\n" for d in digests).encode()).hexdigest()


def chunk_digests(doc: dict[str, Any], *, uri: str) -> tuple[int, list[str]] | None:
    """``(chunk bytes, digests)`` of a manifest that lists its object's chunks (None: it does not);
    StorageError when the list cannot describe the object (wrong count, not hex digests)."""
    chunks = doc.get("chunks")
    if chunks is None:
        return None
    size, digests = (chunks.get("bytes"), chunks.get("sha256")) if isinstance(chunks, dict) else (None, None)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or not isinstance(digests, list):
        raise errors.StorageError(f"{uri}: 'chunks' is not {{bytes, sha256: [...]}}")
    if not all(isinstance(d, str) and len(d) == 64 and set(d) <= _HEX64 for d in digests):
        raise errors.StorageError(f"{uri}: a chunk digest is not a lowercase hex SHA-256")
    if len(digests) != -(-int(doc["sizeBytes"]) // size):
        raise errors.StorageError(f"{uri}: {len(digests)} chunk digests for {doc['sizeBytes']} bytes of {size}")
    return size, digests


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
    identity: dict[str, str | None] | None = None,
    table_oids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The in-memory manifest (tables keyed by label; ``tableOids`` too: how verify tells a renamed or
    moved table from one that vanished); :func:`encode` gives what is stored."""
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
        "identity": identity,
        "startedAt": timestamp(started_at),
        "finishedAt": timestamp(finished_at),
        "durationSeconds": round((finished_at - started_at).total_seconds(), 3),
        "rowCountMode": row_count_mode,
        "tables": dict(sorted(tables.items())),
        "tableOids": dict(table_oids or {}),
        "writeStats": dict(sorted(write_stats.items())),
        "verification": None,
    }


def encode(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored (version 2) form of an in-memory manifest: names as ``[schema, table]`` pairs."""
    oids = doc.get("tableOids") or {}
    tables = [
        {"name": list(identifiers.parse(k)), "rows": int(v), **({"oid": int(oids[k])} if k in oids else {})}
        for k, v in sorted(doc["tables"].items())
    ]
    stats = [{"name": list(identifiers.parse(k)), **v} for k, v in sorted((doc.get("writeStats") or {}).items())]
    stored = {k: v for k, v in doc.items() if k != "tableOids"}
    return {**stored, "v": VERSION, "tables": tables, "writeStats": stats}


def _decode_tables(value: Any, *, version: int) -> dict[str, Any]:
    if version == 1:
        if not isinstance(value, dict):
            raise ValueError("'tables' is not an object")
        return {identifiers.label(*identifiers.from_v1_key(str(k))): v for k, v in value.items()}
    if not isinstance(value, list):
        raise ValueError("'tables' is not a list")
    out: dict[str, Any] = {}
    for item in value:
        if not isinstance(item, dict):
            raise ValueError(f"{item!r} is not a table entry")
        rest = {k: v for k, v in item.items() if k != "name"}
        out[identifiers.label(*identifiers.table_name(item.get("name")))] = rest.get("rows", rest)
    return out


def validate(value: Any, *, uri: str) -> dict[str, Any]:
    """Read a manifest (version 1 or 2) back from S3 into the in-memory form; StorageError naming what is wrong."""
    if not isinstance(value, dict) or value.get("v") not in READABLE:
        raise errors.StorageError(f"{uri} is not a version {' or '.join(map(str, READABLE))} backup manifest")
    missing = [k for k in REQUIRED if k not in value]
    if missing:
        raise errors.StorageError(f"{uri} lacks {', '.join(missing)}")
    chunk_digests(value, uri=uri)
    try:
        tables = _decode_tables(value["tables"], version=value["v"])
        stats = _decode_tables(value.get("writeStats") or ({} if value["v"] == 1 else []), version=value["v"])
    except ValueError as exc:
        raise errors.StorageError(f"{uri}: {exc}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in tables.values()):
        raise errors.StorageError(f"{uri}: a table's row count is not an integer")
    oids = {
        identifiers.label(*identifiers.table_name(item.get("name"))): item["oid"]
        for item in (value["tables"] if value["v"] >= 2 else [])
        if isinstance(item, dict) and isinstance(item.get("oid"), int)
    }
    return {
        **value,
        "tables": tables,
        "tableOids": oids,
        "writeStats": stats if value.get("writeStats") is not None else None,
    }


def is_good(value: Any) -> bool:
    """A complete backup whose restore-verification (if any) did not fail."""
    if not isinstance(value, dict) or value.get("v") not in READABLE:
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
    listed = value.get("chunks")
    if isinstance(listed, dict) and isinstance(listed.get("sha256"), list):
        data["chunksSha256"] = chunk_list_sha256(listed["sha256"])
    if value.get("verification") is not None:
        data["verification"] = {"method": value["verification"].get("method"), "ok": value["verification"].get("ok")}
    return data
