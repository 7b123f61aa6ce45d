"""Where a run's backup lives: parse ``s3://BUCKET/PREFIX/.../RUN/`` into keys. Pure: no I/O.

A run folder holds ``dump.pgdump`` (custom format) or ``dump.tar`` (directory
format as a tar stream), ``manifest.json``, ``verify.json``, ``restore.json`` and
the write counters ``stats-migrate-start.json``, ``stats-migrate-end.json`` and
``stats-pre-restore.json``.
Its parent folder is the retention scope: the sibling run folders are the
older backups of the same database.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic_operator.api import errors

#: Object names inside a run folder.
DUMP_CUSTOM = "dump.pgdump"
DUMP_DIRECTORY = "dump.tar"
MANIFEST = "manifest.json"
VERIFY = "verify.json"
RESTORE = "restore.json"
#: Write counters (see :mod:`alembic_operator.job.checks.writecounters`): migrate start and end, and before a restore.
STATS_MIGRATE_START = "stats-migrate-start.json"
STATS_MIGRATE_END = "stats-migrate-end.json"
STATS_PRE_RESTORE = "stats-pre-restore.json"

#: The variable that may carry ``--location`` (the Job builder sets it).
ENV = "ALEMBIC_OPERATOR_LOCATION"


@dataclass(frozen=True)
class Location:
    """A run folder in a bucket; ``prefix`` always ends with ``/`` (never empty)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str | None) -> Location:
        """Validate ``uri``; raise InvalidInput naming what is wrong."""
        if not uri or not uri.strip():
            raise errors.InvalidInput(f"no backup location: pass --location s3://BUCKET/PREFIX/RUN/ or set {ENV}")
        uri = uri.strip()
        if not uri.startswith("s3://"):
            scheme = uri.split("://", 1)[0] + "://" if "://" in uri else uri[:20]
            raise errors.InvalidInput(f"backup location must be an s3:// URI, not {scheme!r}")
        rest = uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not _valid_bucket(bucket):
            raise errors.InvalidInput(f"backup location has an invalid bucket name {bucket!r}")
        parts = [p for p in key.split("/") if p]
        if not parts:
            raise errors.InvalidInput("backup location names no run folder: use s3://BUCKET/PREFIX/RUN/")
        if any(p in (".", "..") for p in parts):
            raise errors.InvalidInput("backup location must not contain '.' or '..' segments")
        return cls(bucket=bucket, prefix="/".join(parts) + "/")

    @property
    def run(self) -> str:
        """The run folder's own name (last segment)."""
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent_prefix(self) -> str:
        """The retention scope: the folder holding this run's siblings ('' at the bucket root)."""
        head = self.prefix.rstrip("/").rpartition("/")[0]
        return head + "/" if head else ""

    def key(self, name: str) -> str:
        """The object key of ``name`` inside the run folder."""
        return self.prefix + name

    def uri(self, name: str = "") -> str:
        """``s3://bucket/prefix/name`` (the folder itself when ``name`` is empty)."""
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def sibling(self, prefix: str) -> Location:
        """Another run folder in the same bucket (``prefix`` as S3 lists it)."""
        return Location(bucket=self.bucket, prefix=prefix if prefix.endswith("/") else prefix + "/")


def dump_name(fmt: str) -> str:
    """The dump object's name for a pg_dump format (``custom`` or ``directory``)."""
    if fmt == "custom":
        return DUMP_CUSTOM
    if fmt == "directory":
        return DUMP_DIRECTORY
    raise errors.InvalidInput(f"unknown dump format {fmt!r}: use custom or directory")


def _valid_bucket(name: str) -> bool:
    if not 3 <= len(name) <= 63:
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
    return set(name) <= allowed and name[0].isalnum() and name[-1].isalnum()
