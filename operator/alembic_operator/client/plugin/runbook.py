"""``kubectl alembic restore RUN``: the by-hand restore of a run's backup, as exact shell commands.

What the operator's rollback runs, with the same checks — the dump's SHA-256 against the
run's status, the manifest's database identity, other sessions' writes since the backup
(``--on-foreign-writes hold`` stops before changing anything, exit 42) — but started by a
person, e.g. for a run whose restore failed, or to go back to an older run's backup. The
commands read the Secrets with the person's own kubectl credentials when they run; the
plugin prints them and runs nothing (tests/plugin runs them against a real backup).

Must not: read Secrets or S3 itself, or print a credential; call the API (:mod:`.reading` does).
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from alembic_operator.api import model
from alembic_operator.client.plugin import stories

FOREIGN_WRITES_EXIT = 42
"""``alembic-operator restore``'s exit code when it held because other sessions wrote since the backup."""


class NoBackup(Exception):
    """The run has no complete backup to restore from."""


def _secret(namespace: str, variable: str, secret: str, key: str) -> str:
    path = "{.data." + key.replace(".", "\\.") + "}"
    read = f"kubectl -n {shlex.quote(namespace)} get secret {shlex.quote(secret)} -o jsonpath={shlex.quote(path)}"
    return f'export {variable}="$({read} | base64 -d)"'


def environment(run: dict[str, Any]) -> list[str]:
    """``export`` lines giving ``alembic-operator restore`` what a restore Job's pod gets (secrets read live)."""
    namespace = run["metadata"]["namespace"]
    spec = model.parse_spec(run["spec"])
    ref, s3 = spec.database.url_secret_ref, spec.backup.s3
    lines = [_secret(namespace, "DATABASE_URL", ref.name, ref.key)]
    creds = s3.credentials_secret_ref
    if creds is not None:
        lines.append(_secret(namespace, "AWS_ACCESS_KEY_ID", creds.name, creds.access_key_id_key))
        lines.append(_secret(namespace, "AWS_SECRET_ACCESS_KEY", creds.name, creds.secret_access_key_key))
    plain = {
        "S3_ENDPOINT": s3.endpoint,
        "S3_REGION": s3.region,
        "S3_FORCE_PATH_STYLE": "true" if s3.force_path_style else "false",
        "S3_SSE": s3.server_side_encryption,
        "S3_SSE_KMS_KEY_ID": s3.kms_key_id,
        "S3_EXPECTED_BUCKET_OWNER": s3.expected_bucket_owner,
        # As in the step pods: botocore >= 1.36 sends checksums many S3-compatible servers reject.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    lines += [f"export {name}={shlex.quote(value)}" for name, value in plain.items() if value is not None]
    return lines


def restore_command(run: dict[str, Any], *, discard_foreign_writes: bool = False) -> str:
    """The ``alembic-operator restore`` line for the run's backup (its folder, dump and SHA-256)."""
    status = model.parse_status(run.get("status"))
    backup = status.backup
    if backup is None or not (backup.uri and backup.sha256 and status.location):
        phase = status.phase.value if status.phase else "Pending"
        raise NoBackup(f"MigrationRun {run['metadata']['name']} ({phase}) has no complete backup to restore from")
    argv = [
        "alembic-operator",
        "restore",
        "--location",
        status.location,
        "--backup-uri",
        backup.uri,
        "--backup-sha256",
        backup.sha256,
        *(["--backup-chunks-sha256", backup.chunks_sha256] if backup.chunks_sha256 else []),
        "--on-foreign-writes",
        "restore" if discard_foreign_writes else "hold",
    ]
    return shlex.join(argv)


def runbook(run: dict[str, Any]) -> str:
    """The whole by-hand restore: what is restored, the environment, the restore, the way past a hold."""
    meta, status = run["metadata"], model.parse_status(run.get("status"))
    hold, discard = restore_command(run), restore_command(run, discard_foreign_writes=True)
    backup = status.backup
    assert backup is not None  # restore_command raised otherwise
    taken = stories.clock(backup_time(run))
    return "\n".join(
        [
            f"Restore the database of MigrationRun {meta['namespace']}/{meta['name']} to its backup, by hand:",
            f"backup:  {backup.uri}",
            f"         {backup.size or '?'}, sha256 {backup.sha256}, taken {taken}",
            "It replaces the whole database in one transaction, as the operator's rollback does; it checks the",
            "dump's SHA-256 and the backup's database first, and stops before changing anything if other",
            f"sessions wrote since the backup (exit {FOREIGN_WRITES_EXIT}). Stop the application's writers first if "
            "you can.",
            "",
            "1. The run's database URL and S3 keys, read with your kubectl credentials (nothing is printed):",
            *(f"  {line}" for line in environment(run)),
            "2. Restore (alembic-operator from `pip install alembic-operator`, or the operator's image):",
            f"  {hold}",
            f"3. Only if it stopped with exit {FOREIGN_WRITES_EXIT} and those writes may go (it lists them; "
            "export what you need first):",
            f"  {discard}",
        ]
    )


def backup_time(run: dict[str, Any]) -> datetime | None:
    """When the backup step ended (its record's finishedAt), if known."""
    step = model.parse_status(run.get("status")).steps.backup
    return step.finished_at if step else None
