"""Render an upgrade offline revision by revision, so one that cannot render does not hide the others.

``alembic upgrade A:B --sql`` stops at the first revision that cannot run
offline (a data migration that queries, one that checks
``context.is_offline_mode()`` and refuses): everything after it would go
unseen. Rendering each pending revision from its own parent keeps every
other revision's statements, and names each one that failed with its reason.

Must not: connect to a database or execute anything (offline mode only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alembic import util
from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic_operator.api import text
from alembic_operator.job.migrations import alembic_runtime


@dataclass
class Rendering:
    """The SQL of every revision that rendered, in order, and (id, reason) of each that did not."""

    sql: str = ""
    unrendered: list[tuple[str, str]] = field(default_factory=list)


def render_each(config: Config, script: ScriptDirectory, pending: tuple[str, ...]) -> Rendering:
    """Render each revision of ``pending`` (in upgrade order) as ``alembic upgrade PARENT:REV --sql`` would."""
    out = Rendering()
    pieces: list[str] = []
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
    out.sql = "\n".join(pieces)
    return out
