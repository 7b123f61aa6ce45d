"""The MigrationRun's ``spec.approval``: whether every run waits for a person before it changes the database.

Why one field here and ``approve`` in ``plan.destructive`` (not an
``approval: onDestructive`` switch): what to do with destructive statements is
already one question with one answer (``plan.destructive``: allow, warn,
block, and now approve), and two fields answering it could contradict each
other (``plan.destructive: allow`` skips the plan, so an ``onDestructive``
approval would never see anything). ``approval.required`` answers the other
question: must every run wait, destructive or not.

Must not: import anything of ours but :mod:`.schema`; do I/O.
"""

from __future__ import annotations

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model


class ApprovalSpec(_Model):
    """A person approves the migration before the database is changed (phase AwaitingApproval)."""

    required: bool = Field(
        default=False,
        description="true: every run waits in AwaitingApproval after its plan (and rehearsal) until a user "
        "with the verb approve annotates it alembic-operator.dev/approve-migration=<their user name>, or "
        "alembic-operator.dev/reject-migration=<their user name> to end it Failed with the database "
        "untouched. Only runs with destructive statements wait with plan.destructive: approve.",
    )
