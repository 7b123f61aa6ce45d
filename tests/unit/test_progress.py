"""Progress of long steps: what a step pod serves, and what the operator records from it.

The pod side is exercised over a real socket (the operator reads it the same way, at the pod's
IP); the bed test (tests/plugin/test_progress_column.py) shows the column during a real backup.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, datetime

import pytest

from alembic_operator.api import status_progress
from alembic_operator.controller import progress as watching
from alembic_operator.job import progress as serving

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_meters(monkeypatch):
    monkeypatch.setattr(serving, "_meters", {})
    port = _free_port()
    monkeypatch.setenv(status_progress.PORT_ENV, str(port))
    return port


def test_a_counting_step_serves_its_bytes_as_json_and_prometheus_text(fresh_meters, monkeypatch):
    serving.count("backup", 3 << 20)
    serving.count("backup", 1000)
    monkeypatch.setattr(status_progress, "PORT", fresh_meters)  # the operator polls the served port
    served = watching.read_pod("127.0.0.1")
    assert served is not None and served.step == "backup" and served.bytes_done == (3 << 20) + 1000
    base = f"http://127.0.0.1:{fresh_meters}"
    with urllib.request.urlopen(base + status_progress.PATH, timeout=5) as response:
        assert json.loads(response.read())["bytesDone"] == (3 << 20) + 1000
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        assert f'alembic_operator_step_bytes_done{{step="backup"}} {(3 << 20) + 1000}' in response.read().decode()


def test_a_port_already_taken_does_not_fail_the_step(fresh_meters):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", fresh_meters))
        taken.listen()
        serving.count("restore", 10)  # logs a warning, counts on
    assert serving._meters["restore"].done == 10


def test_a_running_restore_shows_percent_rate_and_time_left_of_the_dumps_size():
    served = status_progress.ServedProgress(step="restore", bytes_done=25 << 20, seconds=10.0)
    record = watching.running(served, status={"backup": {"sizeBytes": 100 << 20}}, now=NOW)
    assert (record.percent, record.bytes_per_second, record.seconds_left) == (25, (25 << 20) // 10, 30)
    assert record.summary == "restore 25.0 MiB of 100.0 MiB (25%), 2.5 MiB/s, ~30s left"
    assert not record.final


def test_a_running_backup_has_no_total_and_shows_bytes_and_rate():
    served = status_progress.ServedProgress(step="backup", bytes_done=3 << 20, seconds=2.0)
    record = watching.running(served, status={}, now=NOW)
    assert record.summary == "backup 3.0 MiB, 1.5 MiB/s" and record.percent is None and record.seconds_left is None


def test_the_final_record_of_a_succeeded_backup_is_the_results_size():
    status = {
        "phase": "Migrating",
        "backup": {"sizeBytes": 21504, "size": "21.0 KiB"},
        "steps": {"backup": {"outcome": "Succeeded"}},
        "progress": {"step": "backup", "bytesDone": 20000, "summary": "backup 19.5 KiB", "final": False},
    }
    assert watching.wants_progress(status)
    final = watching.finished(status, now=NOW)
    assert final is not None and final.final and final.bytes_done == 21504
    assert final.summary == "backup 21.0 KiB, done"
    assert not watching.wants_progress({**status, "progress": final.model_dump(by_alias=True)})


def test_a_step_still_running_is_not_made_final():
    status = {"phase": "BackingUp", "steps": {"backup": {"job": "r-backup"}}, "progress": {"step": "backup"}}
    assert watching.finished(status, now=NOW) is None
    failed = {**status, "phase": "Failed", "steps": {"backup": {"outcome": "Failed"}}}
    failed["progress"] = {"step": "backup", "bytesDone": 5, "summary": "backup 5 B"}
    record = watching.finished(failed, now=NOW)
    assert record is not None and record.summary == "backup 5 B, failed" and record.bytes_done == 5


def test_only_the_running_pod_of_the_steps_current_job_is_polled():
    def pod(step: str, job: str, phase: str, ip: str) -> dict:
        labels = {"alembic-operator.dev/run": "r", "alembic-operator.dev/step": step, "job-name": job}
        return {"metadata": {"labels": labels}, "status": {"phase": phase, "podIP": ip}}

    index: dict = {}
    for body in (
        pod("plan", "r-plan", "Running", "10.1.0.1"),
        pod("backup", "r-backup-old", "Running", "10.1.0.2"),
        pod("backup", "r-backup", "Pending", "10.1.0.3"),
        pod("backup", "r-backup", "Running", "10.1.0.4"),
    ):
        for key, value in watching.running_step_pods(body=body, namespace="ns").items():
            index.setdefault(key, []).append(value)
    assert ("ns", "r", "backup") in index and len(index[("ns", "r", "backup")]) == 2  # the Pending one is left out
    assert watching.step_pod_ip(index[("ns", "r", "backup")], job="r-backup") == "10.1.0.4"
    assert watching.step_pod_ip(index.get(("ns", "r", "restore"), []), job=None) is None
