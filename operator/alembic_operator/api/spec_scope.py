"""The MigrationRun's ``spec.backup.schemas``: which schemas are the application's (issue 13, scope).

Its own module because :mod:`.spec` is at its size limit; the field itself is on ``BackupSpec``.
The backup step gets one ``--schema`` per name (see ``job/database/scope.py`` for what a scoped
backup holds and what its restore touches).

Must not: import anything of ours; do I/O.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

#: A schema's exact name (PostgreSQL keeps at most 63 bytes of a name).
SchemaName = Annotated[str, StringConstraints(min_length=1, max_length=63)]

DESCRIPTION = (
    "The application's schemas (exact names). Empty (the default): the whole database is the "
    "application's. Set: the backup holds only these schemas and the extensions in them, and a "
    "restore drops and recreates only these plus the schemas created since the backup; another "
    "application's schemas, large objects and publications are left as they are."
)
