"""pytest plugin: one row per fault (fault, expected outcome, observed phase, data intact) in a JSON-lines file.

Loaded by tests/faults/conftest.py (and by ``-p tests.faults.recording`` in faults.mk,
which also runs the operator-restart faults that live in tests/e2e). A fault test says
what it injects and expects with the ``fault`` marker and reports what it saw through
the ``fault`` fixture::

    @pytest.mark.fault("migrate pod SIGKILLed mid-run", expected="RolledBack")
    def test_...(app, database, fault):
        before = dbstate.capture(database)
        ...
        fault.saw(status)                      # the observed phase
        fault.intact(dbstate.capture(database), before)   # records yes/no, then asserts equality

A row is written when the test ends, passed or not: a failing test leaves
"data intact: no" (or "unknown") in the table instead of vanishing from it.
:mod:`tests.faults.report` prints the table and regenerates docs/faults.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("FAULTS_RESULTS") or REPO / "build" / "faults" / "results.jsonl")

#: Fault tests that live elsewhere (reused, not duplicated): test function → how to describe a row.
EXTERNAL = {
    "test_an_operator_killed_mid_phase_resumes_without_running_a_step_twice": lambda p: (
        f"operator SIGKILLed while {p['kill_in']}, restarted ({p['image'].split(':')[1]} scenario)",
        p["ends"],
    ),
}


class FaultRow:
    """What one fault test injected, expected, observed."""

    def __init__(self, *, node_id: str, fault: str, expected: str) -> None:
        self.node_id = node_id
        self.fault = fault
        self.expected = expected
        self.observed: str | None = None
        self.data_intact: bool | None = None
        self.notes: list[str] = []
        self.started = time.monotonic()

    def saw(self, status_or_phase: Any) -> str:
        """Record the observed phase (a status dict or a phase string); returns the phase."""
        phase = status_or_phase.get("phase") if isinstance(status_or_phase, dict) else status_or_phase
        self.observed = str(phase)
        return self.observed

    def intact(self, actual: Any, expected: Any, *, what: str = "database state") -> None:
        """Record whether the data is as it must be, then assert it (never a silent pass)."""
        self.data_intact = actual == expected
        if not self.data_intact:
            raise AssertionError(f"{what} differs from what it must be:\n{_diff(actual, expected)}")

    def note(self, text: str) -> None:
        self.notes.append(text)


def _diff(actual: Any, expected: Any) -> str:
    if hasattr(actual, "rows") and hasattr(expected, "rows"):
        lines = []
        for table in sorted(set(actual.rows) | set(expected.rows)):
            if actual.rows.get(table) != expected.rows.get(table):
                lines.append(f"  rows of {table}: {actual.rows.get(table)} != {expected.rows.get(table)}")
        if actual.schema != expected.schema:
            import difflib

            diff = difflib.unified_diff(
                expected.schema.splitlines(), actual.schema.splitlines(), "expected", "actual", lineterm="", n=1
            )
            lines += ["  schema:", *["    " + ln for ln in diff][:60]]
        return "\n".join(lines)
    return f"  {actual!r} != {expected!r}"


def _error(report: pytest.TestReport) -> str | None:
    """The failure's own message (the exception line), not the traceback's last line (a file position)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or (str(report.longrepr).splitlines() or [""])[-1]
    return " ".join(text.split())[:300] or None


def _write(row: dict[str, Any]) -> None:
    """Append one line with one ``write`` on an ``O_APPEND`` descriptor: under pytest-xdist every
    worker appends to the same file, and such writes land whole, never interleaved."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise OSError(f"{RESULTS}: wrote {written} of {len(line)} bytes of a fault row")


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Any:
    marker = request.node.get_closest_marker("fault")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the fault fixture without @pytest.mark.fault(...)")
    row = FaultRow(node_id=request.node.nodeid, fault=marker.args[0], expected=marker.kwargs["expected"])
    request.node._fault_row = row
    return row


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(description, expected=PHASE): a row of the fault table")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item._fault_report = report  # type: ignore[attr-defined]


def pytest_runtest_teardown(item: pytest.Item) -> None:
    report = getattr(item, "_fault_report", None)
    if report is None:
        return
    passed = report.outcome == "passed"
    row: FaultRow | None = getattr(item, "_fault_row", None)
    name = getattr(item, "originalname", item.name)
    if row is None and name in EXTERNAL and hasattr(item, "callspec"):
        fault, expected = EXTERNAL[name](item.callspec.params)
        row = FaultRow(node_id=item.nodeid, fault=fault, expected=expected)
        # Reused test: it asserts the end phase and the data itself, so passing means both held.
        row.observed = expected if passed else None
        row.data_intact = True if passed else None
        row.started -= report.duration
    if row is None:
        return
    pg = None
    if hasattr(item, "callspec"):
        pg = item.callspec.params.get("pg")
    _write(
        {
            "id": item.nodeid,
            "fault": row.fault,
            "expected": row.expected,
            "observed": row.observed or ("(test error)" if not passed else None),
            "dataIntact": row.data_intact,
            "passed": passed,
            "pg": pg,
            "seconds": round(report.duration, 1),
            "notes": row.notes,
            "error": None if passed else _error(report),
        }
    )
