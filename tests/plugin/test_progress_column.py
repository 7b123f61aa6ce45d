"""``kubectl get mrun`` shows a long backup's progress while it runs (issue 19).

The backup is slowed the way the fault suite stops pg_dump mid-stream: the step pod's
pg_dump is SIGSTOPped three times, each after 2 MiB more (testbed.faults.freeze_after),
and at each stop the PROGRESS column, read through the real kubectl, must show a larger
value than before. The operator reads the count at the step pod's IP
(controller/progress.py); the pod serves it (job/progress.py). Once the backup is done the
column's last value is the backup's size, the BACKUP column's.
"""

from __future__ import annotations

import re
import signal
from typing import Any

from testbed import faults
from tests.faults.support import on_pg15, seeded

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
SHOWN: list[str] = []
"""Every ``kubectl get mrun`` output read, for ``pytest -s`` (the README quotes it)."""
STOPS = 3
STEP = 2 << 20
"""pg_dump writes at least this much more before each next stop (a stop may overshoot it): more than the
1 MiB read plus the pipe's buffer the count may lag behind what pg_dump wrote, so each stop shows more."""


def progress_column(app: Any, name: str) -> str:
    """The PROGRESS cell of ``kubectl get mrun NAME`` (cut at the header's column offsets)."""
    out = app.cluster.kubectl("-n", app.namespace, "get", "mrun", name).stdout
    SHOWN.append(out)
    header, row = out.splitlines()[:2]
    starts = [found.start() for found in re.finditer(r"\S+", header)]
    start = header.index("PROGRESS")
    later = [at for at in starts if at > start]
    end = later[0] if later else len(row)
    return row[start:end].strip()


def shown_bytes(cell: str) -> float | None:
    """``backup 5.0 MiB, 2.1 MiB/s`` → 5 MiB in bytes (None while the column is empty)."""
    found = re.match(r"backup (\d+(?:\.\d+)?) (B|KiB|MiB|GiB)\b", cell)
    return float(found.group(1)) * UNITS[found.group(2)] if found else None


@on_pg15
def test_a_slow_backup_shows_rising_progress_in_kubectl_get_ending_at_the_backups_size(app, database):
    seeded(database, revision="0003")  # a revision to migrate, so the backup runs
    faults.fill(database, 250_000)  # about 26 MiB uncompressed: room for three stops and their overshoot
    app.apply(app.manifest("progress-1", spec={"backup": {"compression": "0"}}))
    step = faults.wait_for_step_pid(app.cluster, app.namespace, "progress-1", "backup")
    dump = faults.wait_for_child(step, "pg_dump", with_arg="--format")
    seen: list[tuple[str, float]] = []
    try:
        written = 0
        for _ in range(STOPS):
            written = faults.freeze_after(dump, written + STEP)  # pg_dump stays stopped while the column is read
            last = seen[-1][1] if seen else 0.0

            def risen(last: float = last) -> tuple[str, float] | None:
                cell = progress_column(app, "progress-1")
                value = shown_bytes(cell)
                return (cell, value) if value is not None and value > last else None

            seen.append(faults.wait_for(f"PROGRESS above {last:.0f} bytes", risen, timeout=45, interval=0.5))
    finally:
        faults.kill(dump, signal.SIGCONT)
    print("".join(dict.fromkeys(SHOWN)))  # for -s: each distinct table once
    status = app.wait("progress-1", timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    assert [value for _, value in seen] == sorted({value for _, value in seen}), seen  # strictly rising
    final = faults.wait_for(
        "the final PROGRESS value",
        lambda: (app.get("progress-1")["status"].get("progress") or {}).get("final") or None,
        timeout=30,
        interval=0.5,
    )
    assert final is True
    assert app.get("progress-1")["status"]["progress"]["bytesDone"] == status["backup"]["sizeBytes"]
    cell = progress_column(app, "progress-1")
    assert cell == f"backup {status['backup']['size']}, done", cell
    assert shown_bytes(cell) is not None and shown_bytes(cell) > seen[-1][1], (cell, seen)
    print(SHOWN[-1])  # for -s
