"""Fault rows written by several pytest-xdist workers at once all reach the table whole.

``make faults`` and ``make test`` run the fault tests in parallel workers that append to one
results file; :mod:`tests.faults.report` reads it line by line. A row split by another
worker's row would make the report fail to parse, or drop a fault from docs/faults.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.faults import report

REPO = Path(__file__).resolve().parents[2]
ROWS_PER_WORKER = 60
NOTE_BYTES = 20_000  # larger than a buffered file's 8 KiB, which would take several writes


WRITER = """
import sys
from tests.faults import recording
worker, rows, note = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in range(rows):
    recording._write({"id": f"{worker}::row{n}", "fault": "f", "expected": "Failed", "notes": [worker * note]})
"""


def test_rows_appended_by_parallel_workers_are_whole_lines(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "FAULTS_RESULTS": str(results), "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, worker, str(ROWS_PER_WORKER), str(NOTE_BYTES // 3)], env=env)
        for worker in ("gw0", "gw1", "gw2")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    lines = results.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # a torn line fails here
    assert len(rows) == 3 * ROWS_PER_WORKER
    assert all(row["notes"] == [row["id"][:3] * (NOTE_BYTES // 3)] for row in rows)
    assert len(report.load(results)) == 3 * ROWS_PER_WORKER
