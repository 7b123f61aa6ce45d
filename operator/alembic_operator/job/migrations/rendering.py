"""Render an upgrade offline revision by revision, so one that cannot render does not hide the others.

``alembic upgrade A:B --sql`` stops at the first revision that cannot run
offline (a data migration that queries, one that checks
``context.is_offline_mode()`` and refuses): everything after it would go
unseen. Rendering each pending revision from its own parent keeps every
other revision's statements, and names each one that failed with its reason.

A column type change whose op names the ``existing_type`` (autogenerate
writes it) gets a hint comment above it (:func:`.widening.hint`): the offline
SQL says only the new type, and varchar(100) → varchar(200) only widens.

Must not: connect to a database or execute anything (offline mode only).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from alembic import util
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.operations import Operations, ops, toimpl
from alembic.script import ScriptDirectory

from alembic_operator.api import text
from alembic_operator.job.migrations import alembic_runtime, widening


@dataclass
class Rendering:
    """The SQL of every revision that rendered, in order, and (id, reason) of each that did not."""

    sql: str = ""
    unrendered: list[tuple[str, str]] = field(default_factory=list)


def render_each(config: Config, script: ScriptDirectory, pending: tuple[str, ...]) -> Rendering:
    """Render each revision of ``pending`` (in upgrade order) as ``alembic upgrade PARENT:REV --sql`` would."""
    out = Rendering()
    pieces: list[str] = []
    with _noting_existing_types():
        _render(config, script, pending, out, pieces)
    out.sql = "\n".join(pieces)
    return out


def _render(
    config: Config, script: ScriptDirectory, pending: tuple[str, ...], out: Rendering, pieces: list[str]
) -> None:
    for rev in pending:
        found = script.get_revision(rev)
        parents = util.to_tuple(found.down_revision, default=()) if found is not None else ()
        try:
            piece = alembic_runtime.offline_sql(config, start=parents[0] if parents else None, target=rev)
        except Exception as exc:  # noqa: BLE001 - whatever a script raises offline, the next one still renders
            out.unrendered.append((rev, f"{type(exc).__name__}: {text.first_line(exc)}"))
            continue
        if len(parents) > 1:  # a merge: rendered from one parent, Alembic adds the other branch; keep its own part
            marker = re.search(rf"^-- Running upgrade [^\n]*-> {re.escape(rev)}\b", piece, re.M)
            piece = piece[marker.start() :] if marker else piece
        pieces.append(piece)


def _alter_column_noting_type(operations: Operations, operation: ops.AlterColumnOp) -> None:
    """Alembic's own alter_column, preceded offline by a hint naming the column's existing type."""
    impl, existing_type = operations.impl, operation.existing_type
    changes_type = operation.modify_type is not None
    if isinstance(impl, DefaultImpl) and impl.as_sql and changes_type and existing_type is not None:  # offline
        try:
            existing = str(existing_type.compile(dialect=impl.dialect))
        except Exception:  # noqa: BLE001 - a type this dialect cannot name gives no hint: the change stays flagged
            existing = None
        if existing:
            column = ".".join(p for p in (operation.schema, operation.table_name, operation.column_name) if p)
            impl.static_output(widening.hint(column=column, existing_type=existing))
    toimpl.alter_column(operations, operation)


@contextlib.contextmanager
def _noting_existing_types() -> Iterator[None]:
    """Alembic's operation plugin API (``replace=True``) swaps in the hint writer while rendering, then back."""
    register: Any = Operations.implementation_for
    register(ops.AlterColumnOp, replace=True)(_alter_column_noting_type)
    try:
        yield
    finally:
        register(ops.AlterColumnOp, replace=True)(toimpl.alter_column)
