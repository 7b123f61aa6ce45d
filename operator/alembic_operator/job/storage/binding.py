"""Bind a restore to its backup and its database, before anything is touched. Pure: no I/O.

A run folder's ``manifest.json`` is not trusted on its own: it names the dump
and its checksum, so whoever can write the folder could point a restore at
another dump. The restore step is told by its caller (the operator, from the
run's status, which the backup step's own result filled) which dump to use and
its SHA-256; the manifest must agree, and the dump must live in the run folder.
So must the manifest's list of chunk digests, when the caller names it
(``chunksSha256``): a restore that streams trusts each chunk's digest from it.
The manifest's ``identity`` (recorded by the backup step: server
``system_identifier`` and database name) must be the target's, or a backup of
one database would silently replace another.

Must not: read S3 or the database (the caller passes what it read), or accept
a mismatch without the caller's explicit override.
"""

from __future__ import annotations

from typing import Any

from alembic_operator.api import errors, location
from alembic_operator.job.storage import manifest


def check(
    *,
    loc: location.Location,
    doc: dict[str, Any],
    archive_uri: str,
    backup_uri: str | None,
    backup_sha256: str | None,
    target: dict[str, str | None],
    backup_chunks_sha256: str | None = None,
    allow_other_database: bool,
) -> None:
    """InvalidInput naming the first thing that does not bind (see module docstring)."""
    if not archive_uri.startswith(loc.uri()) or "/" in archive_uri[len(loc.uri()) :]:
        raise errors.InvalidInput(
            f"the manifest names {archive_uri}, which is not in the run folder {loc.uri()}; nothing was restored"
        )
    if backup_uri is not None and backup_uri != archive_uri:
        raise errors.InvalidInput(
            f"the manifest names {archive_uri}, not the backup this restore was given ({backup_uri}); "
            "nothing was restored"
        )
    if backup_sha256 is not None and backup_sha256.lower() != str(doc.get("sha256", "")).lower():
        raise errors.InvalidInput(
            f"the manifest's SHA-256 {str(doc.get('sha256'))[:12]}… is not the backup's {backup_sha256[:12]}…; "
            "nothing was restored"
        )
    if backup_chunks_sha256 is not None:
        listed = manifest.chunk_digests(doc, uri=archive_uri)
        if listed is None or manifest.chunk_list_sha256(listed[1]) != backup_chunks_sha256.lower():
            raise errors.InvalidInput(
                "the manifest's list of chunk digests is not the one the backup reported "
                f"({backup_chunks_sha256[:12]}…); nothing was restored"
            )
    if allow_other_database:
        return
    recorded = doc.get("identity")
    if not isinstance(recorded, dict):
        raise errors.InvalidInput(
            "the backup does not record which database it was taken from (a version 1 manifest); "
            "pass --allow-other-database to restore it anyway; nothing was restored"
        )
    for key, what in (("systemIdentifier", "server (system identifier)"), ("database", "database")):
        theirs, ours = recorded.get(key), target.get(key)
        if theirs is not None and ours is not None and str(theirs) != str(ours):
            raise errors.InvalidInput(
                f"the backup was taken from another {what}: {theirs!r}, this is {ours!r}; "
                "pass --allow-other-database to restore it anyway; nothing was restored"
            )
