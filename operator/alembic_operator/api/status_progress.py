"""Progress of a long step (backup, restore): the wire format its pod serves and ``status.progress``.

The step counts the bytes it streams and serves them on :data:`PORT` at :data:`PATH`
(:mod:`alembic_operator.job.progress`); the operator polls the pod's IP
(:mod:`alembic_operator.controller.progress`) and records :class:`StepProgress`, so
``kubectl get mrun`` shows it without the operator reading Secrets, S3 or pod logs.
Once the step has ended the record is final and its bytes are the backup's size.

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model

PORT = 8431
"""TCP port a backup or restore pod serves its progress on (``ALEMBIC_OPERATOR_PROGRESS_PORT`` overrides;
0 turns it off)."""
PORT_ENV = "ALEMBIC_OPERATOR_PROGRESS_PORT"
PATH = "/progress"
"""JSON :class:`ServedProgress`; ``/metrics`` serves the same in Prometheus' text format."""

ProgressStep = Literal["backup", "restore"]
PROGRESS_STEPS: tuple[ProgressStep, ...] = ("backup", "restore")


class ServedProgress(_Model):
    """What a step pod serves: bytes streamed so far and the seconds it has been streaming."""

    step: ProgressStep = Field(description="backup or restore.")
    bytes_done: int = Field(ge=0, description="Bytes streamed so far (into the upload, or out of the dump).")
    bytes_total: int | None = Field(default=None, ge=0, description="Bytes expected in all, when the step knows.")
    seconds: float = Field(ge=0, description="Seconds since the first byte was counted.")


class StepProgress(_Model):
    """``status.progress``: how far the running (or last) backup or restore has streamed."""

    step: ProgressStep = Field(description="backup or restore.")
    bytes_done: int = Field(ge=0, description="Bytes streamed so far; once final, the backup's size.")
    bytes_total: int | None = Field(
        default=None, ge=0, description="Bytes expected: the dump's size for a restore, when known."
    )
    percent: int | None = Field(default=None, ge=0, le=100, description="bytesDone of bytesTotal, in percent.")
    bytes_per_second: int | None = Field(default=None, ge=0, description="Average rate since the step started.")
    seconds_left: int | None = Field(default=None, ge=0, description="Estimated seconds left, when the total is known.")
    summary: str = Field(description="The PROGRESS column, e.g. 'backup 12.0 MiB, 2.0 MiB/s'.")
    final: bool = Field(default=False, description="True once the step ended: no further value follows.")
    updated_at: datetime | None = Field(default=None, description="When the operator last read the pod.")
