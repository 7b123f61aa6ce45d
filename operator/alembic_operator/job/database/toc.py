"""A full restore's pg_restore runs: schemas and their grants first, then the rest of the archive.

pg_restore puts every GRANT last (its ACL pass). As a superuser that does not
matter; as the application's role, ``ALTER TABLE … OWNER TO r`` fails unless
``r`` already has CREATE on the table's schema, which the schema's GRANT,
still to come, gives it. :func:`schemas_first` splits the archive's table of
contents in two ``-L`` lists: the SCHEMA entries and the schemas' ACL entries,
then everything else. Both runs feed the same transaction
(:mod:`alembic_operator.job.database.loading`).

Must not: parse or write back any name (a list holds only dump ids: pg_restore
reads nothing else of a line), or connect to a database.
"""

from __future__ import annotations

import os
import re
import subprocess

from alembic_operator.api import redact
from alembic_operator.job.database import loading, pgtools

#: A ``pg_restore -l`` entry line: dump id, catalog oid, object oid, then the description.
_TOC_ENTRY = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")


def listing(*, restore_tool: pgtools.Tool, archive_path: str) -> subprocess.CompletedProcess[bytes]:
    """``pg_restore -l``: the table of contents, which sits at the archive's start (a file holding
    only the start of a custom archive lists as well, once its table of contents is complete)."""
    return subprocess.run([restore_tool.path, "-l", archive_path], capture_output=True, check=False, timeout=600)


def schemas_first(
    *, restore_tool: pgtools.Tool, archive_path: str, preamble: str, streamed: bool = False
) -> list[tuple[str, list[str]]]:
    """``sections`` for :func:`loading.load`: ``preamble`` and the schemas with their grants, then the rest.

    The lists are written next to the archive (the caller's temporary directory, removed with it).
    The first section needs only the table of contents: with ``streamed``, ``archive_path`` holds just
    the start of the archive, and the second reads the whole from its stdin (:func:`loading.load`'s ``feed``).
    """
    listed = listing(restore_tool=restore_tool, archive_path=archive_path)
    if listed.returncode != 0:
        raise loading.rolled_back(
            f"pg_restore -l exited with {listed.returncode}, nothing was restored: "
            f"{redact.redact(listed.stderr.decode(errors='replace').strip()[-300:])}"
        )
    first: list[str] = []
    rest: list[str] = []
    for line in listed.stdout.decode(errors="replace").splitlines():
        match = _TOC_ENTRY.match(line)
        if match is None:
            continue
        schema = match[2] == "2615" and match[4].startswith("SCHEMA - ")
        schema_acl = match[2] == "0" and match[4].startswith("ACL - SCHEMA ")
        (first if schema or schema_acl else rest).append(match[1])
    workdir = os.path.dirname(os.path.abspath(archive_path))
    lists = [os.path.join(workdir, f"schemas-first-{n}.list") for n in (1, 2)]
    for path, ids in zip(lists, (first, rest), strict=True):
        with open(path, "w", encoding="ascii") as handle:
            handle.write("".join(f"{i}\n" for i in ids))
    return [(preamble, ["-L", lists[0], archive_path]), ("", ["-L", lists[1], *([] if streamed else [archive_path])])]
