"""Step Jobs, one builder per step, all sharing :func:`builders.pods.build_pod_template`.

Pure: :func:`build_step_job` returns a step's Job manifest as a dict; creating
it is the handler's business (``applying.py``). Keyword-only arguments.

Every Job:

1. is named by :func:`naming.job_name` (deterministic per run uid, step, attempt),
2. is owned by the MigrationRun (controller, blockOwnerDeletion),
3. has ``backoffLimit: 0`` — a step is never blindly retried (a retried
   migrate could apply twice) — and ``activeDeadlineSeconds`` from
   ``spec.timeouts``,
4. carries the run/step/database/managed-by labels on itself and its pod.

Container contracts (the flags the steps parse):

* plan     (app image):      alembic-operator plan --target T --location L --policy P [--unrendered report]
* backup   (operator image): alembic-operator backup --location L --format F [--jobs N] [--compression C]
                             --retention-keep-last N [--retention-max-age-seconds S] [--verify restore]
* migrate  (app image):      spec.migrate.command + [--target T --lock-timeout X if the default command]
                             + spec.migrate.args
* verify   (operator image): alembic-operator verify --location L --mode M [--allow-decrease a,b]
                             [--declared-allowance REV:KIND:TABLE[=TO]]... (status.plan.declaredAllowances)
                             [--include G]... [--exclude G]... [--expect-revision R]
* downgrade (app image):     alembic-operator downgrade --lock-timeout X [+ spec.migrate.args with the default
                             command] (rollback.method: downgrade; :mod:`.downgrades`)
* restore  (operator image): alembic-operator restore --location L --on-foreign-writes hold|restore
                             (hold: stop with ForeignWritesDetected, changing nothing, when other
                             sessions wrote since the backup; restore: go ahead and report them)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic_operator.api import constants
from alembic_operator.api.model import DEFAULT_MIGRATE_COMMAND, RunView
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller import naming
from alembic_operator.controller.builders import downgrades, pods, rehearsals
from alembic_operator.controller.settings import Settings

CLI = "alembic-operator"


def build_owner_reference(*, run: RunView) -> dict[str, Any]:
    """The ownerReference that ties a Job to its MigrationRun (garbage-collected with it)."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "name": run.name,
        "uid": run.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _location(run: RunView) -> str:
    return naming.location(spec=run.spec, namespace=run.namespace, run_name=run.name, run_uid=run.uid)


def _job(
    *,
    run: RunView,
    step: str,
    attempt: int,
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    working_dir: str | None = None,
    settings: Settings,
) -> dict[str, Any]:
    template = pods.build_pod_template(
        run=run, step=step, image=image, command=command, args=args, working_dir=working_dir, settings=settings
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.job_name(run_name=run.name, run_uid=run.uid, step=step, attempt=attempt),
            "namespace": run.namespace,
            "labels": pods.build_labels(run=run, step=step),
            "annotations": {naming.ANNOTATION_ATTEMPT: str(attempt), naming.ANNOTATION_RUN_UID: run.uid},
            "ownerReferences": [build_owner_reference(run=run)],
        },
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": run.spec.timeouts.for_step(step),
            "template": template,
        },
    }


def plan_command(*, run: RunView) -> list[str]:
    """The plan container's command."""
    return [
        CLI,
        "plan",
        "--target",
        run.spec.migrate.target,
        "--location",
        _location(run),
        "--policy",
        "warn" if run.spec.plan.destructive == "approve" else run.spec.plan.destructive,  # the operator waits
        # revisions the plan cannot render are reported: under block the operator waits for a person's approval
        *(["--unrendered", "report"] if run.spec.plan.destructive == "block" else []),
    ]


def backup_command(*, run: RunView) -> list[str]:
    """The backup container's command."""
    b = run.spec.backup
    cmd = [CLI, "backup", "--location", _location(run), "--format", b.format]
    if b.jobs is not None:
        cmd += ["--jobs", str(b.jobs)]
    if b.compression is not None:
        cmd += ["--compression", b.compression]
    cmd += ["--retention-keep-last", str(b.retention.keep_last)]
    if b.retention.max_age_days is not None:
        cmd += ["--retention-max-age-seconds", str(b.retention.max_age_days * 86400)]
    if b.verify == "restore":
        cmd += ["--verify", "restore"]
    for schema in b.schemas:  # the app's schemas (issue 13, scope)
        cmd += ["--schema", schema]
    return cmd


def migrate_command(*, run: RunView) -> tuple[list[str], list[str]]:
    """The migrate container's (command, args)."""
    m = run.spec.migrate
    args: list[str] = []
    if list(m.command) == DEFAULT_MIGRATE_COMMAND:
        args += ["--target", m.target, "--lock-timeout", m.lock_timeout]
    args += list(m.args)
    return list(m.command), args


def verify_command(*, run: RunView, expect_revision: str | None = None) -> list[str]:
    """The verify container's command."""
    rc = run.spec.verify.row_counts
    cmd = [CLI, "verify", "--location", _location(run), "--mode", rc.mode]
    if rc.allow_decrease:
        cmd += ["--allow-decrease", ",".join(rc.allow_decrease)]
    for allowance in run.status.plan.declared_allowances if run.status.plan is not None else []:
        # what the pending revisions declare (alembic_operator_allow); verify names each one it uses
        rename = f"={allowance.to}" if allowance.kind == "rename" and allowance.to else ""
        cmd += ["--declared-allowance", f"{allowance.revision}:{allowance.kind}:{allowance.table}{rename}"]
    for glob in rc.include:
        cmd += ["--include", glob]
    for glob in rc.exclude:
        cmd += ["--exclude", glob]
    if expect_revision:
        cmd += ["--expect-revision", expect_revision]
    return cmd


def restore_approver(*, run: RunView) -> str | None:
    """Who approved discarding foreign writes: the value of annotation approve-restore, None when unset.

    The chart's admission policy admits only the approving user's name as the value
    (and only from a user with the verb ``approve``); without it, "true" also approves.
    "false" or an empty value approves nothing.
    """
    value = run.annotations.get(constants.ANNOTATION_APPROVE_RESTORE, "").strip()
    return value if value and value.lower() != "false" else None


def restore_approved(*, run: RunView) -> bool:
    """Whether a person approved discarding foreign writes (see :func:`restore_approver`)."""
    return restore_approver(run=run) is not None


def restore_command(*, run: RunView) -> list[str]:
    """The restore container's command; ``--on-foreign-writes`` follows the spec and the approval annotation."""
    discard = run.spec.rollback.on_foreign_writes == "restore" or restore_approved(run=run)
    cmd = [CLI, "restore", "--location", _location(run)]
    backup = run.status.backup
    if backup is not None and backup.uri and backup.sha256:  # bind the restore to the backup this run took
        cmd += ["--backup-uri", backup.uri, "--backup-sha256", backup.sha256]
        if backup.chunks_sha256:  # the restore may stream, checking each chunk before pg_restore reads it
            cmd += ["--backup-chunks-sha256", backup.chunks_sha256]
    return [*cmd, "--on-foreign-writes", "restore" if discard else "hold"]


def build_step_job(
    *, run: RunView, step: str, settings: Settings, attempt: int = 1, expect_revision: str | None = None
) -> dict[str, Any]:
    """The Job of ``step`` (a :class:`Step`): its command, in the image :data:`STEPS` names for it.

    The application's image (plan, migrate) runs in ``spec.migrate.workingDir``;
    ``expect_revision`` is what the verify step must find (the migrate step's to-revision).
    """
    try:
        step = Step(step)
    except ValueError:
        raise ValueError(f"unknown step {step!r}; expected one of {', '.join(Step)}") from None
    command, args = _step_command(run=run, step=step, expect_revision=expect_revision)
    app = STEPS[step].image == "app"
    job = _job(
        run=run,
        step=step,
        attempt=attempt,
        image=run.spec.migrate.image if app else settings.operator_image,
        command=command,
        args=args,
        working_dir=run.spec.migrate.working_dir if app else None,
        settings=settings,
    )
    if step in rehearsals.STEPS:  # the rehearsal's other server, when it has one
        job["spec"]["template"]["spec"]["containers"][0]["env"] += rehearsals.server_env(run=run)
    return job


def _step_command(*, run: RunView, step: Step, expect_revision: str | None) -> tuple[list[str], list[str]]:
    """(command, args) of the step's container."""
    match step:
        case Step.PLAN:
            return plan_command(run=run), []
        case Step.BACKUP:
            return backup_command(run=run), []
        case Step.MIGRATE:
            return migrate_command(run=run)
        case Step.VERIFY:
            return verify_command(run=run, expect_revision=expect_revision), []
        case Step.RESTORE:
            return restore_command(run=run), []
        case Step.DRIFT:  # the app's image and working directory: its alembic.ini, env.py and models
            return [CLI, "drift", "--policy", run.spec.verify.drift], []
        case Step.DOWNGRADE:  # rollback.method: downgrade, in the app's image like migrate
            return downgrades.downgrade_command(run=run)
        case Step.REHEARSE_MIGRATE:  # the unchanged migrate command, pointed at the copy
            inner, args = migrate_command(run=run)
            return rehearsals.command(run=run, step=step, inner=inner), args
        case Step.REHEARSE_VERIFY:
            return rehearsals.command(run=run, step=step, inner=verify_command(run=run)), []
        case Step.REHEARSE_PREPARE | Step.REHEARSE_DROP:
            return rehearsals.command(run=run, step=step), []
