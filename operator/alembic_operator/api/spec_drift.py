"""The MigrationRun's ``spec.verify.drift``: whether the app's models are compared with the migrated database.

Its own module because :mod:`.spec` is at its size limit; the field itself is on ``VerifySpec``.

Must not: import anything of ours; do I/O.
"""

from __future__ import annotations

from typing import Literal

DriftPolicy = Literal["ignore", "warn", "fail"]

DESCRIPTION = (
    "After the verification, compare the app's models (env.py's target_metadata) with the database as "
    "alembic check does, in the app's image: ignore (no check, the default); warn (differences in "
    "status.drift and a Warning Event); fail (differences fail the run like a failed verification: restore)."
)
