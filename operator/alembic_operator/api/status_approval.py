"""The MigrationRun's ``status.approval`` and ``status.restoreApproval``: who decided, when, and on what.

The decision itself is an annotation on the run (:data:`~.constants.APPROVAL_ANNOTATIONS`),
whose value names the user (the chart's admission policy checks it); the operator copies
it here when it acts on it, so the record survives the annotation being removed.

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model

ApprovalState = Literal["Waiting", "Approved", "Rejected"]


class ApprovalStatus(_Model):
    """A person's decision the run waits (or waited) for."""

    state: ApprovalState = Field(description="Waiting, Approved or Rejected.")
    reasons: list[str] = Field(
        default_factory=list, description="Why the run waits (approval.required, destructive statements)."
    )
    summary: str | None = Field(default=None, description="What a person approves: revisions, statements, findings.")
    requested_at: datetime | None = Field(default=None, description="When the run started to wait.")
    by: str | None = Field(
        default=None, description="Who approved or rejected: the annotation's value (the user's name)."
    )
    decided_at: datetime | None = Field(default=None, description="When the operator saw the decision.")
