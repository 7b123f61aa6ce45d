"""MigrationRun objects for the health tests: built with the operator's own model and condition
factories (tests/helm/test_health.py), and captured from real runs (the e2e tests save what the
operator really wrote with :func:`save`, then classify it with the Lua and kstatus).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic_operator.api import conditions, model

FAILED_PHASES = {
    "Failed": conditions.Reason.FAILED,
    "RolledBack": conditions.Reason.ROLLED_BACK,
    "RollbackFailed": conditions.Reason.ROLLBACK_FAILED,
    "RollbackHeld": conditions.Reason.ROLLBACK_HELD,
}
IN_PROGRESS_PHASES = (
    "Pending",
    "Queued",
    "Planning",
    "AwaitingApproval",
    "BackingUp",
    "Rehearsing",
    "Migrating",
    "Verifying",
    "RollingBack",
)


def constructed(
    phase: str | None, *, generation: int = 1, observed: int | None = 1, message: str = ""
) -> dict[str, Any]:
    """A MigrationRun whose status the operator's condition factories set for ``phase`` (None: no status)."""
    obj: dict[str, Any] = {
        "apiVersion": "alembic-operator.dev/v1alpha1",
        "kind": "MigrationRun",
        "metadata": {"name": "shop-1", "namespace": "shop", "generation": generation, "uid": "u-1"},
        "spec": {
            "database": {"urlSecretRef": {"name": "db"}},
            "migrate": {"image": "shop:1"},
            "backup": {"s3": {"bucket": "backups"}},
        },
    }
    if phase is None:
        return obj
    now = datetime(2026, 1, 1, tzinfo=UTC)
    reason = FAILED_PHASES.get(phase, conditions.Reason.PROGRESSING)
    conds = conditions.kstatus_conditions(
        [], phase=model.Phase(phase), reason=reason, message=message or phase, generation=observed, now=now
    )
    status = model.MigrationRunStatus(
        phase=model.Phase(phase), observed_generation=observed, conditions=conds, message=message or None
    )
    obj["status"] = model.dump(status)
    return obj


def save(obj: dict[str, Any], directory: Path, label: str) -> Path:
    """Save a real MigrationRun (as read from the apiserver) as ``<directory>/<label>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{label}.json"
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))
    return path
