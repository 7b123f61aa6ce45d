"""``kubectl alembic backups``: each database's backups, newest first, and what retention will remove.

Pure: run dicts in, a table out. A backup is what a run's status records (URI, size,
SHA-256) once its backup step succeeded; its age counts from the step's end. The
retention settings are the newest run's ``spec.backup.retention`` — the next run's
backup step applies the same rule as :mod:`alembic_operator.job.storage.retention`
(which this module may not import): after the new backup, an older good backup goes
when it is beyond the newest ``keepLast`` or older than ``maxAgeDays``.

Only backups of runs still in the cluster are listed; a folder whose run was deleted
stays in S3 (and counts for retention there) but is not seen here — the plugin does
not read S3.

Must not: call the API or S3.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pydantic

from alembic_operator.api import model
from alembic_operator.api.spec import RetentionSpec
from alembic_operator.client.plugin import stories


@dataclasses.dataclass(frozen=True)
class Backup:
    """One run's backup as its status records it."""

    run: str
    uri: str
    size: str
    sha256: str
    finished_at: datetime
    retention: RetentionSpec


def _backup_of(run: dict[str, Any]) -> tuple[str, Backup] | None:
    """(database, backup) of a run whose backup step succeeded; None otherwise."""
    status = model.parse_status(run.get("status"))
    step = status.steps.get("backup")
    backup = status.backup
    if backup is None or not backup.uri or step is None or step.outcome != "Succeeded" or not step.finished_at:
        return None
    try:
        spec = model.parse_spec(run.get("spec") or {})
    except pydantic.ValidationError:
        return None
    ref = spec.database.url_secret_ref
    size = backup.size or (f"{backup.size_bytes} B" if backup.size_bytes is not None else "?")
    found = Backup(
        run=run["metadata"]["name"],
        uri=backup.uri,
        size=size,
        sha256=backup.sha256 or "?",
        finished_at=step.finished_at,
        retention=spec.backup.retention,
    )
    return f"Secret {ref.name}, key {ref.key}", found


def by_database(runs: list[dict[str, Any]]) -> dict[str, list[Backup]]:
    """Each database's backups, newest first."""
    grouped: dict[str, list[Backup]] = {}
    for run in runs:
        found = _backup_of(run)
        if found is not None:
            grouped.setdefault(found[0], []).append(found[1])
    for backups in grouped.values():
        backups.sort(key=lambda b: (b.finished_at, b.run), reverse=True)
    return grouped


def fate(*, index: int, backup: Backup, retention: RetentionSpec, now: datetime) -> str:
    """What the next backup's retention does to the ``index``-th newest backup (the new one becomes 0th)."""
    if index + 1 >= retention.keep_last:
        return f"removed (beyond keepLast {retention.keep_last})"
    if retention.max_age_days is not None and now - backup.finished_at > timedelta(days=retention.max_age_days):
        return f"removed (older than maxAgeDays {retention.max_age_days})"
    return "kept"


def table(runs: list[dict[str, Any]], *, namespace: str, now: datetime) -> str:
    """The text ``kubectl alembic backups`` prints."""
    grouped = by_database(runs)
    if not grouped:
        return f"no backups recorded by the MigrationRuns in namespace {namespace}"
    out: list[str] = []
    for database, backups in sorted(grouped.items()):
        retention = backups[0].retention
        age_rule = f", maxAgeDays {retention.max_age_days}" if retention.max_age_days else ""
        out.append(
            f"database {database}: {len(backups)} backup(s); "
            f"retention keepLast {retention.keep_last}{age_rule} (spec of run {backups[0].run})"
        )
        rows = [("RUN", "SIZE", "AGE", "SHA256", "AT THE NEXT BACKUP", "URI")]
        rows += [
            (
                b.run,
                b.size,
                stories.span((now - b.finished_at).total_seconds()),
                b.sha256[:12],
                fate(index=i, backup=b, retention=retention, now=now),
                b.uri,
            )
            for i, b in enumerate(backups)
        ]
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
        for row in rows:
            padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.append("  " + "  ".join([*padded, row[-1]]))
    return "\n".join(out)
