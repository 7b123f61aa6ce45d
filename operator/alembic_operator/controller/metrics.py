"""Prometheus metrics of the operator, served on Settings.metrics_port.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` and
``_bytes`` units). Label values are bounded: phases, steps and outcomes only,
never run names (unbounded cardinality would grow memory with every release).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
RECONCILES = Counter("alembic_operator_reconciles_total", "Reconcile passes, by result.", ["result"])


def serve(port: int) -> None:
    """Start the /metrics HTTP server in a background thread."""
    start_http_server(port)
