"""The parts of ``status.plan`` that the verify step reads later: the data changes the revisions declare.

The plan step reads ``alembic_operator_allow`` from the pending revisions
(:mod:`alembic_operator.job.migrations.allowances`); the operator keeps them
here so the verify Job, built after a restart too, gets them as arguments.

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model


class DeclaredAllowance(_Model):
    """A data change a revision declares it intends: verify allows it and names it."""

    revision: str = Field(description="The revision whose alembic_operator_allow declares it.")
    table: str = Field(description="The table (a name, or schema.table; globs match as in allowDecrease).")
    kind: Literal["shrink", "drop", "rename"] = Field(description="shrink (may lose rows), drop or rename.")
    to: str | None = Field(default=None, description="For rename: the table's new name.")
