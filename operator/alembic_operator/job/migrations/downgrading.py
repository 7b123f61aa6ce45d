"""What a rollback by downgrade needs to know before it runs, and the record it is checked against.

1. :func:`record_schema`: the migrate step, right before upgrading and under the
   migration lock, writes the revision and the schema fingerprint
   (:mod:`alembic_operator.job.database.fingerprint`) to ``schema-migrate-start.json``
   in the run folder: the schema a downgrade must bring back.
2. :func:`read_schema`: the downgrade step reads it back.
3. :func:`missing_downgrades`: the revisions a downgrade would run whose
   ``downgrade()`` does nothing (``pass``, ``...``, only a docstring) or only
   raises, or that have none: Alembic would do nothing or fail half-way, so the
   step refuses before touching the database.

Must not: run Alembic or write to the database; fail a migration over the record
(it is best effort: without it, a rollback by downgrade falls back to the restore).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import logging
import textwrap
from datetime import UTC, datetime
from typing import Any

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError as GraphError
from alembic.util import CommandError

from alembic_operator.api import errors, location
from alembic_operator.job.migrations import revisions
from alembic_operator.job.migrations import stats as stats_
from alembic_operator.job.storage import manifest, s3

log = logging.getLogger(__name__)

#: In the run folder, next to the manifest.
SCHEMA_RECORD = "schema-migrate-start.json"


@dataclasses.dataclass(frozen=True)
class SchemaRecord:
    """The database as the migration found it: its revision(s) and its schema fingerprint."""

    heads: tuple[str, ...]
    fingerprint: dict[str, str]


def record_schema(stats: stats_.MigrateStats, *, heads: tuple[str, ...], fingerprint: dict[str, str]) -> None:
    """Write :data:`SCHEMA_RECORD` into the run folder (best effort, like the write counters)."""
    if stats.loc is None or stats.bucket is None:
        return
    doc = {"heads": list(heads), "fingerprint": fingerprint, "takenAt": manifest.timestamp(datetime.now(UTC))}
    try:
        stats.bucket.put_json(stats.loc.key(SCHEMA_RECORD), doc)
    except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a migration
        log.warning("could not record %s (a rollback by downgrade will restore instead): %s", SCHEMA_RECORD, exc)


def read_schema(bucket: s3.Bucket, loc: location.Location) -> SchemaRecord:
    """The record the migrate step wrote; StorageError naming why a downgrade cannot be checked without it."""
    key = loc.key(SCHEMA_RECORD)
    if not bucket.exists(key):
        raise errors.StorageError(
            f"no {loc.uri(SCHEMA_RECORD)}: the migrate step did not record the schema it started from "
            "(a custom migrate command, or S3 was away), so a downgrade could not be checked"
        )
    doc = bucket.get_json(key)
    try:
        heads = tuple(str(h) for h in doc["heads"])
        found = {str(k): str(v) for k, v in doc["fingerprint"].items()}
    except (KeyError, TypeError, AttributeError):
        raise errors.StorageError(f"{loc.uri(SCHEMA_RECORD)} is not a schema record") from None
    return SchemaRecord(heads=heads, fingerprint=found)


def missing_downgrades(script: ScriptDirectory, current: tuple[str, ...], target: tuple[str, ...]) -> list[str]:
    """The revisions between ``current`` and ``target`` (newest first) whose downgrade is absent or does nothing."""
    try:
        undone = list(script.iterate_revisions(current, revisions.describe(target) or "base"))
    except (CommandError, GraphError) as exc:  # e.g. the target is not below the database's revision
        raise errors.RevisionError(
            f"cannot downgrade from {revisions.describe(current) or 'base'} to "
            f"{revisions.describe(target) or 'base'}: {exc}"
        ) from None
    return [sc.revision for sc in undone if sc is not None and not _has_downgrade(sc.module)]


def _has_downgrade(module: Any) -> bool:
    """Whether the revision module's ``downgrade()`` does something besides ``pass``, ``...`` or a ``raise``."""
    func = getattr(module, "downgrade", None)
    if not callable(func):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):  # no source to read: let it run, the fingerprint decides
        return True
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    return any(not _does_nothing(statement) for statement in body)


def _does_nothing(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass | ast.Raise):  # a downgrade that only raises cannot downgrade
        return True
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)  # docstring, ...
