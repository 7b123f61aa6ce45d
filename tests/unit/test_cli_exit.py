"""The console script ends the process without the interpreter's finalization once a step's result is
written (``cli.entry``): a daemon thread torn down at finalization crashed a finished backup with
SIGSEGV (exit 139) after its success was recorded. What a user relies on still holds: the exit code
is the step's, the termination message and every log line are complete."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from testbed import tools

PROBE = textwrap.dedent(
    """
    import atexit, logging, sys, threading, time
    atexit.register(lambda: print("FINALIZED", flush=True))  # runs only if the interpreter finalizes
    threading.Thread(target=lambda: time.sleep(60), daemon=True).start()  # a daemon thread still alive at exit
    sys.argv = ["alembic-operator", "--termination-message-path", sys.argv[1], "wait", "--timeout-seconds", "0"]
    print("line before the end", end="")  # unflushed: entry() must flush it
    from alembic_operator.cli import entry
    entry()
    """
)


def test_a_step_exits_with_its_code_its_result_and_its_output_complete_and_no_finalization(tmp_path: Path) -> None:
    result_file = tmp_path / "termination-log"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result_file)],
        env={"DATABASE_URL": "postgresql://app:pw@127.0.0.1:9/app", "PATH": "/usr/bin:/bin"},
        cwd=tools.REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(result_file.read_text())
    assert result["ok"] is False and result["step"] == "wait"
    assert done.returncode not in (0, -11, 139) and done.returncode > 0, done.stderr  # the step's own code
    assert done.stdout.startswith("line before the end")  # flushed before the process ended
    assert "FINALIZED" not in done.stdout  # finalization (and its daemon-thread teardown) skipped
    assert "WaitTimeout" in done.stderr or result["reason"] in done.stderr  # the log line made it out


def test_the_installed_console_script_is_the_entry_that_skips_finalization() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert scripts["alembic-operator"].value == "alembic_operator.cli:entry"
