"""Errors the steps raise, rooted at :class:`StepError`.

Each class carries the exit code the CLI returns and the ``reason`` the
operator shows in status; the reconciler reads the reason back from the
step's termination message, never from logs. Messages are one line, name
the problem, and never contain a password (see :mod:`alembic_operator.api.redact`).

``changed_database`` tells whether the database may have been modified
before the error: the reconciler restores only when it might have been.
"""

from __future__ import annotations


class StepError(Exception):
    """A step failed in a way it understands. Exit code 1 unless a subclass says."""

    exit_code: int = 1
    reason: str = "StepFailed"
    #: Whether the database may have been changed before this error.
    changed_database: bool = False

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(StepError):
    """Bad arguments, a malformed URL, a missing setting. Nothing was touched."""

    exit_code = 2
    reason = "InvalidInput"


class DatabaseUnreachable(StepError):
    """The database could not be connected to (host, auth, database name)."""

    exit_code = 3
    reason = "DatabaseUnreachable"


class StorageError(StepError):
    """S3 refused or could not be reached (bucket, credentials, endpoint)."""

    exit_code = 4
    reason = "StorageError"


class ToolMissing(StepError):
    """No pg_dump/pg_restore of a usable major version was found."""

    exit_code = 5
    reason = "ToolMissing"


class BackupFailed(StepError):
    """pg_dump or the upload failed; the multipart upload was aborted."""

    exit_code = 10
    reason = "BackupFailed"


class RevisionError(StepError):
    """Unknown database revision, unknown target, or multiple heads (raised by migrate, plan, wait)."""

    exit_code = 20
    reason = "RevisionError"


class LockTimeout(StepError):
    """Another migration holds the database's advisory lock (raised by migrate)."""

    exit_code = 21
    reason = "LockTimeout"


class MigrationFailed(StepError):
    """Alembic raised. ``changed_database`` says whether anything was committed (raised by migrate)."""

    exit_code = 22
    reason = "MigrationFailed"


class DestructiveChange(StepError):
    """The plan contains destructive statements and the policy blocks them (raised by plan)."""

    exit_code = 23
    reason = "DestructiveChange"


class RowCountViolation(StepError):
    """Tables lost rows or disappeared against the backup manifest (raised by verify)."""

    exit_code = 30
    reason = "RowCountViolation"
    changed_database = True


class RevisionMismatch(StepError):
    """The database is not at the expected revision (raised by verify and wait)."""

    exit_code = 31
    reason = "RevisionMismatch"


class SchemaDrift(StepError):
    """The app's models and the database differ after the migration (raised by drift --policy fail)."""

    exit_code = 32
    reason = "SchemaDrift"
    changed_database = True  # it runs after a migration: what the migration did stays


class ChecksumMismatch(StepError):
    """The dump's SHA-256 differs from the manifest; nothing was restored (raised by restore)."""

    exit_code = 40
    reason = "ChecksumMismatch"


class RestoreFailed(StepError):
    """pg_restore failed, or the restored row counts differ from the manifest (raised by restore)."""

    exit_code = 41
    reason = "RestoreFailed"
    changed_database = True


class ForeignWritesDetected(StepError):
    """Other sessions wrote since the backup and ``--on-foreign-writes hold``: nothing was restored
    (raised by restore, before it touches the database)."""

    exit_code = 42
    reason = "ForeignWritesDetected"


class DowngradeMissing(StepError):
    """A revision the downgrade would undo has no downgrade (absent, ``pass``, or it only raises); nothing was
    changed (raised by downgrade)."""

    exit_code = 43
    reason = "DowngradeMissing"


class DowngradeFailed(StepError):
    """Alembic's downgrade raised, or left the database at another revision (raised by downgrade)."""

    exit_code = 44
    reason = "DowngradeFailed"
    changed_database = True


class SchemaMismatch(StepError):
    """After the downgrade the schema fingerprint differs from the one the migration started from (raised by
    downgrade)."""

    exit_code = 45
    reason = "SchemaMismatch"
    changed_database = True


class WaitTimeout(StepError):
    """The database did not reach the expected revision in time (raised by wait)."""

    exit_code = 50
    reason = "WaitTimeout"


class RunFailed(StepError):
    """The MigrationRun followed by ``run`` ended in a phase other than Succeeded (raised by run)."""

    exit_code = 60
    reason = "RunFailed"


class RunHeld(StepError):
    """The MigrationRun waits for a person (RollbackHeld) (raised by run)."""

    exit_code = 61
    reason = "RunHeld"


class RunTimeout(StepError):
    """The MigrationRun did not finish within ``--timeout-seconds`` (raised by run)."""

    exit_code = 62
    reason = "RunTimeout"
