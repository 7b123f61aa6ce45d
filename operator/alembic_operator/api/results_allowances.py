"""Result parts about allowed data changes: what the revisions declare (plan) and what verify allowed.

Kept apart from :mod:`.results` (at its size cap), which re-exports both.

Must not: import anything of ours; do I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    """As :class:`alembic_operator.api.results._Wire`: camelCase on the wire, unknown keys kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True)


class DeclaredAllowance(_Wire):
    """A data change a revision declares it intends (``alembic_operator_allow`` in its file): verify may allow it."""

    revision: str
    table: str
    kind: Literal["shrink", "drop", "rename"]
    #: For ``rename``: the table's new name.
    to: str | None = None


class AllowanceUsed(_Wire):
    """A table verify let shrink, vanish or be renamed, and who allowed it (a revision, else the spec)."""

    table: str
    #: What happened: ``shrank``, ``dropped`` or ``renamed`` (to ``to``).
    change: Literal["shrank", "dropped", "renamed"]
    before: int
    after: int | None = None
    to: str | None = None
    #: The revision that declared it; None when the run's spec (``--allow-decrease``) allowed it.
    revision: str | None = None
    #: The pattern that matched (the declared table or the spec's glob).
    pattern: str

    def describe(self) -> str:
        """``legacy_order dropped (400 rows; declared by revision 0003)``: how verify's message names it."""
        source = f"declared by revision {self.revision}"
        if self.revision is None:
            source = f"allowed by the run's allowDecrease {self.pattern}"
        table = _short(self.table)
        if self.change == "dropped":
            return f"{table} dropped ({self.before} rows; {source})"
        if self.change == "renamed":
            return f"{table} renamed to {_short(self.to or '?')} ({self.before} → {self.after} rows; {source})"
        return f"{table} shrank {self.before} → {self.after} rows ({source})"


def _short(table: str) -> str:
    return table.removeprefix("public.")
