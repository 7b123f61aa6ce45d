"""A run's story and why it failed, as the few lines on-call reads. Pure: a run dict in, text out.

``status`` says what happened (phase, revisions, backup, each step's Job and outcome,
times); ``why`` says what went wrong and what a person does next. Both read only the
run's status, which the operator writes from its steps' typed results.

Must not: call the API (:mod:`.reading` does), read Secrets or S3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alembic_operator.api import constants, model
from alembic_operator.api.status import PHASE_MEANINGS, MigrationRunStatus, Phase, StepStatus

#: The command a person types next, per outcome (``{run}``, ``{ns}`` filled in).
NEXT_STEPS: dict[Phase, str] = {
    Phase.FAILED: "fix the cause above and create a new run (a run is a request; its spec cannot change)",
    Phase.ROLLED_BACK: "the database is back as it was at the backup; fix the migration and release a new run",
    Phase.ROLLBACK_FAILED: "the database needs a person: restore it by hand from the backup above "
    "(README: restoring a chosen backup), then delete the run",
}


def clock(value: datetime | None) -> str:
    """An instant as on-call compares it with logs: UTC, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def span(seconds: float) -> str:
    """A duration for humans: ``42s``, ``3m05s``, ``2h10m``, ``3d4h``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600}h"


def _took(start: datetime | None, end: datetime | None) -> str:
    return span((end - start).total_seconds()) if start and end else ""


def _step_line(name: str, step: StepStatus) -> str:
    outcome = step.outcome or "running"
    exit_code = f" (exit {step.exit_code})" if step.exit_code not in (None, 0) else ""
    attempt = f" attempt {step.attempt}" if step.attempt > 1 else ""
    took = _took(step.started_at, step.finished_at)
    line = f"  {name:<8} Job {step.job or '-'}{attempt}: {outcome}{exit_code}{' in ' + took if took else ''}"
    if step.outcome == "Failed" and step.message:
        line += f" — {step.message}"
    return line


def _backup_lines(status: MigrationRunStatus) -> list[str]:
    backup = status.backup
    if backup is None or not backup.uri:
        return ["backup:    none yet"]
    size = backup.size or (f"{backup.size_bytes} B" if backup.size_bytes is not None else "size unknown")
    return [f"backup:    {backup.uri}", f"           {size}, sha256 {backup.sha256 or 'unknown'}"]


def _title(run: dict[str, Any], status: MigrationRunStatus) -> str:
    meta = run["metadata"]
    phase = status.phase or Phase.PENDING
    return f"MigrationRun {meta['namespace']}/{meta['name']}: {phase.value} — {PHASE_MEANINGS[phase]}"


def status_story(run: dict[str, Any]) -> str:
    """Phase, message, revisions, backup, each step's Job and outcome, and the run's times."""
    status = model.parse_status(run.get("status"))
    revisions = f"{status.from_revision or 'base'} -> {status.to_revision or '?'}"
    lines = [_title(run, status)]
    if status.message:
        lines.append(f"message:   {status.message}")
    lines.append(f"revisions: {revisions} (target {status.target_revision or 'head'})")
    lines += _backup_lines(status)
    lines.append("steps:")
    ran = [(name, status.steps.get(name)) for name in constants.STEPS]
    lines += [_step_line(name, step) for name, step in ran if step is not None] or ["  none started"]
    took = _took(status.started_at, status.finished_at)
    lines.append(
        f"started:   {clock(status.started_at)}, finished {clock(status.finished_at)}"
        + (f" (took {took})" if took else "")
    )
    return "\n".join(lines)


def failed_step(status: MigrationRunStatus) -> tuple[str, StepStatus] | None:
    """The first step that failed, in step order (a failed restore after a failed verify names verify)."""
    for name in constants.STEPS:
        step = status.steps.get(name)
        if step is not None and step.outcome == "Failed":
            return name, step
    return None


def why_story(run: dict[str, Any]) -> str:
    """What went wrong (the failed step, its message, the backup) and what a person does next."""
    status = model.parse_status(run.get("status"))
    meta = run["metadata"]
    phase = status.phase or Phase.PENDING
    lines = [_title(run, status)]
    if phase == Phase.SUCCEEDED:
        return "\n".join([*lines, "nothing failed."])
    failed = failed_step(status)
    if failed is None and phase not in (Phase.FAILED, Phase.ROLLBACK_FAILED, Phase.ROLLBACK_HELD):
        return "\n".join([*lines, f"nothing has failed yet; `kubectl alembic status {meta['name']}` follows it."])
    if failed is not None:
        name, step = failed
        lines.append(f"failed step: {name} (Job {step.job or '-'}, reason {step.reason or '-'})")
        lines.append(f"  {step.message or 'the step left no message'}")
    if status.message:
        lines.append(f"run:       {status.message}")
    lines += _backup_lines(status)
    if phase == Phase.ROLLBACK_HELD:
        lines += held_next_steps(run, status)
    else:
        lines.append(f"next:      {NEXT_STEPS.get(phase, 'wait for the run to end')}")
    return "\n".join(lines)


def held_next_steps(run: dict[str, Any], status: MigrationRunStatus) -> list[str]:
    """A held restore: the writes it would discard and the two commands that decide."""
    meta = run["metadata"]
    where = f"{meta['name']} -n {meta['namespace']}"
    writes = status.foreign_writes
    lines = ["held:      a restore would discard writes made since the backup by other sessions:"]
    if writes is not None:
        lines += [f"  {t.table}: ~{t.rows} rows" for t in writes.tables] or ["  (no table named)"]
        if not writes.own_writes_known:
            lines.append("  (the migration's own writes could not be told apart: they are counted too)")
    lines += [
        "next:      export the rows you need (the counters are in stats-pre-restore.json in the run's folder), then",
        f"  kubectl alembic approve {where}   # restore, discarding those writes",
        f"  kubectl alembic reject {where}    # keep the database as it is (deletes the run)",
    ]
    return lines
