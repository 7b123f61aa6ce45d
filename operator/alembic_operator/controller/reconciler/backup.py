"""BackingUp: raise the write fence (if any), then back up; no migration without a complete, recorded backup.

A backup that reports success without its URI, size and SHA-256 counts as
failed (safety rule 2). Any failure ends the run Failed: nothing was changed.

Must not: start the migration before ``status.backup`` holds the URI, size and checksum.
"""

from __future__ import annotations

import dataclasses

from alembic_operator.api import results
from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import BackupStatus, Phase
from alembic_operator.api.steps import Step
from alembic_operator.controller import naming
from alembic_operator.controller.reconciler import fence, jobs, rehearsal
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.outcomes import Outcome


def follow(ctx: Context) -> None:
    """Raise the fence first; once it is up (or there is none), start and follow the backup Job."""
    if ctx.status.steps.backup is None and not fence.raised(ctx):
        return
    jobs.follow(ctx, Step.BACKUP, after)


def after(ctx: Context, outcome: Outcome) -> None:
    """Record the backup and start the migration, or end Failed."""
    if outcome.ok:
        outcome = _record(ctx, outcome)
    if not outcome.ok:
        message = f"backup failed: {outcome.message}; the database is unchanged"
        ctx.step_condition(Step.BACKUP, "False", outcome.reason or Reason.STEP_FAILED, message)
        ctx.end(Phase.FAILED, Reason.BACKUP_FAILED, message)
        return
    backup = ctx.status.backup
    assert backup is not None  # _record wrote it
    ctx.step_condition(Step.BACKUP, "True", Reason.STEP_SUCCEEDED, f"backed up {backup.size} to {backup.uri}")
    if ctx.spec.rehearsal.enabled:  # the copy first; the real migration starts once it passed and is dropped
        rehearsal.begin(ctx)
        return
    jobs.start(ctx, Step.MIGRATE)


def _record(ctx: Context, outcome: Outcome) -> Outcome:
    """status.backup from the result; the outcome turns failed when the URI, size or SHA-256 is missing."""
    data = outcome.data(results.BackupResult) or results.BackupResult()
    backup = ctx.status.backup = BackupStatus(
        uri=data.uri,
        size_bytes=data.size_bytes,
        size=naming.human_size(data.size_bytes),
        sha256=data.sha256,
        chunks_sha256=data.chunks_sha256,
        format=data.format or ctx.spec.backup.format,
        duration_seconds=data.duration_seconds,
        server_version=data.server_version,
        pg_dump_version=data.pg_dump_version,
        manifest_uri=data.manifest_uri,
    )
    if data.revision is not None:
        ctx.status.from_revision = data.revision
    if backup.uri and backup.size_bytes is not None and backup.sha256:
        return outcome
    return dataclasses.replace(
        outcome,
        ok=False,
        reason=Reason.NO_RESULT,
        message="the backup reported success without its URI, size and SHA-256",
    )
