"""Serve a backup's or restore's progress on a small HTTP port of its pod (CloudNativePG-style).

The streaming loops call :func:`count` where they move bytes (one line each, in
:mod:`alembic_operator.job.database.dumping` and ``loading``); the first call starts a
daemon thread serving :data:`~alembic_operator.api.status_progress.PATH` (JSON
:class:`~alembic_operator.api.status_progress.ServedProgress`) and ``/metrics``
(Prometheus text) on ``0.0.0.0`` at the port of ``ALEMBIC_OPERATOR_PROGRESS_PORT`` (default
:data:`~alembic_operator.api.status_progress.PORT`; 0 = off). The operator polls the pod's IP;
nothing here talks to Kubernetes.

Must not: ever fail or slow the step (a port that cannot be bound is logged once and the step
goes on), or serve anything but byte counts (no URL, no table name, no credential).
"""

from __future__ import annotations

import http.server
import logging
import os
import threading
import time

from alembic_operator.api import status_progress

log = logging.getLogger(__name__)


class Meter:
    """Bytes one step has streamed; safe to update from the streaming thread while the server reads."""

    def __init__(self, step: status_progress.ProgressStep, total: int | None = None) -> None:
        self.step = step
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, size: int) -> None:
        with self._lock:
            self.done += size

    def snapshot(self) -> status_progress.ServedProgress:
        with self._lock:
            return status_progress.ServedProgress(
                step=self.step,
                bytes_done=self.done,
                bytes_total=self.total,
                seconds=round(time.monotonic() - self.started, 3),
            )


_meters: dict[str, Meter] = {}
_guard = threading.Lock()


def count(step: status_progress.ProgressStep, size: int) -> None:
    """Add ``size`` streamed bytes to ``step``'s meter; the first call starts the server."""
    meter = _meters.get(step)
    if meter is None:
        meter = _start(step)
    meter.add(size)


def port() -> int:
    """The port to serve on: ``$ALEMBIC_OPERATOR_PROGRESS_PORT`` or the default; 0 = do not serve."""
    value = os.environ.get(status_progress.PORT_ENV, "").strip()
    return int(value) if value.isdigit() else status_progress.PORT


def _start(step: status_progress.ProgressStep) -> Meter:
    with _guard:
        if step in _meters:
            return _meters[step]
        meter = _meters[step] = Meter(step)
        number = port()
        if number:
            try:
                server = http.server.ThreadingHTTPServer(("0.0.0.0", number), _handler(meter))
            except OSError as exc:
                log.warning("progress not served on port %d: %s", number, exc)
            else:
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, name="progress", daemon=True).start()
        return meter


def metrics_text(progress: status_progress.ServedProgress) -> str:
    """The same numbers for Prometheus (one gauge per value, labelled by step)."""
    label = f'{{step="{progress.step}"}}'
    lines = [
        "# HELP alembic_operator_step_bytes_done Bytes the step has streamed so far.",
        "# TYPE alembic_operator_step_bytes_done gauge",
        f"alembic_operator_step_bytes_done{label} {progress.bytes_done}",
        "# HELP alembic_operator_step_seconds Seconds the step has been streaming.",
        "# TYPE alembic_operator_step_seconds gauge",
        f"alembic_operator_step_seconds{label} {progress.seconds}",
    ]
    return "\n".join(lines) + "\n"


def _handler(meter: Meter) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            progress = meter.snapshot()
            if self.path == status_progress.PATH:
                body, kind = progress.model_dump_json(by_alias=True).encode(), "application/json"
            elif self.path == "/metrics":
                body, kind = metrics_text(progress).encode(), "text/plain; version=0.0.4"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per poll would drown the step's own log

    return Handler
