"""Prometheus metrics of the operator, served on Settings.metrics_port.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` and
``_bytes`` units). Label values are bounded: phases, steps and outcomes, and for
the per-database gauges the database (its namespace and Secret/key, as many as
there are databases), never run names (unbounded cardinality would grow memory
with every release). The chart's alerts and dashboard
(charts/alembic-operator/templates/prometheusrule.yaml, dashboards/) use only these
names; tests/helm/test_alerts.py checks them against a real scrape.

Must not: talk to the API; the per-database gauges are set from the status
transitions applying.py writes (they start empty after an operator restart).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from alembic_operator.api import status, steps, text

RUNS_FINISHED = Counter(
    "alembic_operator_runs_finished_total", "MigrationRuns that reached a terminal phase, by phase.", ["phase"]
)
STEP_DURATION = Histogram(
    "alembic_operator_step_duration_seconds",
    "Wall time of finished steps, by step and outcome.",
    ["step", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
BACKUP_BYTES = Counter("alembic_operator_backup_bytes_total", "Bytes of completed backups uploaded to S3.")
RUNS_ACTIVE = Gauge(
    "alembic_operator_runs_active", "MigrationRuns currently in a non-terminal phase, by phase.", ["phase"]
)
JOBS_DELETED = Counter(
    "alembic_operator_jobs_deleted_total", "Step Jobs of ended runs deleted once due (JobSettings.retain_seconds)."
)
RECONCILES = Counter("alembic_operator_reconciles_total", "Reconcile passes, by result.", ["result"])

#: The database of a run: the namespace and the URL Secret's name/key (what the plugin's ``backups`` groups by).
DATABASE_LABELS = ["run_namespace", "database"]
LAST_SUCCESS = Gauge(
    "alembic_operator_database_last_success_timestamp_seconds",
    "When the last MigrationRun of a database Succeeded (Unix time).",
    DATABASE_LABELS,
)
LAST_BACKUP = Gauge(
    "alembic_operator_database_last_backup_timestamp_seconds",
    "When the last successful backup of a database finished (Unix time).",
    DATABASE_LABELS,
)
BACKUP_SIZE = Gauge(
    "alembic_operator_database_backup_size_bytes", "Size of the last backup of a database.", DATABASE_LABELS
)
BACKUP_DURATION = Gauge(
    "alembic_operator_database_backup_duration_seconds",
    "Wall time of the last finished backup step of a database.",
    DATABASE_LABELS,
)


def observe_database(*, body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Set the per-database gauges on a status transition of the run ``body`` (each once, on the change)."""
    ref = ((body.get("spec") or {}).get("database") or {}).get("urlSecretRef") or {}
    labels = {"run_namespace": body["metadata"]["namespace"], "database": f"{ref.get('name')}/{ref.get('key')}"}
    if new.get("phase") == "Succeeded" and old.get("phase") != "Succeeded":
        finished = text.parse_timestamp(new.get("finishedAt"))
        LAST_SUCCESS.labels(**labels).set(finished.timestamp() if finished else time.time())
    size = (new.get("backup") or {}).get("sizeBytes")
    if size and not (old.get("backup") or {}).get("sizeBytes"):
        BACKUP_SIZE.labels(**labels).set(size)
    step = (new.get("steps") or {}).get("backup") or {}
    if step.get("finishedAt") and not (((old.get("steps") or {}).get("backup") or {}).get("finishedAt")):
        started, finished = text.parse_timestamp(step.get("startedAt")), text.parse_timestamp(step["finishedAt"])
        if started and finished:
            BACKUP_DURATION.labels(**labels).set((finished - started).total_seconds())
        if finished and step.get("outcome") == "Succeeded":
            LAST_BACKUP.labels(**labels).set(finished.timestamp())


_COUNTED: collections.OrderedDict[str, None] = collections.OrderedDict()
"""Keys :func:`once` answered True for, oldest first (a bounded memory of what this process counted)."""
_COUNTED_MAX = 20_000
_COUNTED_LOCK = threading.Lock()  # reconciles of different runs run in worker threads at once


def once(key: str) -> bool:
    """True the first time ``key`` (a run uid and what finished: ``<uid>/plan/<job>``) is seen in this process.

    A status transition is counted when its patch is sent, and a reconcile that raised after that is
    decided again; this keeps the second pass from counting the same finish twice. The memory is bounded
    (the oldest keys go first: a run's transitions are minutes apart, not twenty thousand keys).
    """
    with _COUNTED_LOCK:
        if key in _COUNTED:
            return False
        _COUNTED[key] = None
        if len(_COUNTED) > _COUNTED_MAX:
            _COUNTED.popitem(last=False)
        return True


def _expose_every_series() -> None:
    """Export every phase/step/outcome series at 0 from the start: a series that appears only at its
    first increment has no 0 before it, so ``increase()`` in an alert would never see that first 1."""
    for phase in status.Phase:
        RUNS_ACTIVE.labels(phase=phase.value)
        if phase in status.TERMINAL_PHASES:
            RUNS_FINISHED.labels(phase=phase.value)
    for step in steps.Step:
        for outcome in ("Succeeded", "Failed"):
            STEP_DURATION.labels(step=step.value, outcome=outcome)


_expose_every_series()


def serve(port: int) -> None:
    """Start the /metrics HTTP server in a background thread."""
    start_http_server(port)
