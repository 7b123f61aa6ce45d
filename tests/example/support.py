"""Helpers for tests that migrate the example app: app dirs, running steps, dumping schemas.

Steps run two ways, as users run them: in-process through
``alembic_operator.cli.main`` (fast; the working directory is the app dir, as
in the app image) and as ``.venv/bin/alembic-operator`` subprocesses (to see
exactly what reaches stderr and the termination message).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alembic_operator import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "alembic" / "example"
SCENARIOS = REPO / "alembic" / "scenarios"
CLI = Path(sys.executable).with_name("alembic-operator")
HEAD = "0004"


def app_dir(scenario: str | None = None) -> Path:
    """The example app's working dir, or a scenario's (``raises``, ``per-migration-tx``...)."""
    path = EXAMPLE if scenario is None else SCENARIOS / scenario
    assert (path / "alembic.ini").is_file(), path
    return path


@dataclass
class StepRun:
    """How a step ended: exit code, the termination-message result, and what it printed."""

    code: int
    result: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.result.get("data") or {})

    @property
    def message(self) -> str:
        return str(self.result.get("message", ""))


def run_step(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    step: str,
    *args: str,
    url: str | None,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> StepRun:
    """Run ``alembic-operator <step> args`` in this process with ``cwd`` and DATABASE_URL=``url``."""
    term = tmp_path / f"termination-{step}-{os.getpid()}-{len(list(tmp_path.iterdir()))}.json"
    with monkeypatch.context() as m:
        m.chdir(cwd)
        if url is None:
            m.delenv("DATABASE_URL", raising=False)
        else:
            m.setenv("DATABASE_URL", url)
        for key, value in (env or {}).items():
            m.setenv(key, value)
        capsys.readouterr()
        code = cli.main(["--termination-message-path", str(term), step, *args])
        out = capsys.readouterr()
    result = json.loads(term.read_text()) if term.exists() else {}
    return StepRun(code=code, result=result, stdout=out.out, stderr=out.err)


def spawn_step(
    step: str, *args: str, url: str | None, cwd: Path, term: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start the console script as a child process (the way a Job pod runs it)."""
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env["PYTHONPATH"] = str(REPO)
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    return subprocess.Popen(
        [str(CLI), "--termination-message-path", str(term), step, *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], term: Path, timeout: float = 120) -> StepRun:
    out, err = proc.communicate(timeout=timeout)
    result = json.loads(term.read_text()) if term.exists() else {}
    return StepRun(code=proc.returncode, result=result, stdout=out, stderr=err)


def run_cli(
    step: str,
    *args: str,
    url: str | None,
    cwd: Path,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> StepRun:
    """Run the console script to completion."""
    term = tmp_path / f"term-{step}-{len(list(tmp_path.iterdir()))}.json"
    return finish(spawn_step(step, *args, url=url, cwd=cwd, term=term, env=env), term, timeout)


def error_line(stderr: str) -> str:
    """The step's own one-line error (logs of Alembic may precede it)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("alembic-operator ")]
    assert len(lines) == 1, stderr
    return lines[0]


def schema_dump(database: Any) -> str:
    """``pg_dump --schema-only`` of the test database, with the server's own pg_dump."""
    server = database.server
    proc = subprocess.run(
        [str(server.tool("pg_dump")), "--schema-only", "--no-owner", "-d", database.name],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # pg_dump >= 17 prints a random \restrict key; it is not part of the schema
    return "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith(("\\restrict", "\\unrestrict")))


def seed(database: Any, rows: int = 200) -> dict[str, int]:
    """Fill the example schema through ``python -m taskapp.seed`` (the way benchmarks do)."""
    proc = subprocess.run(
        [sys.executable, "-m", "taskapp.seed", "--rows", str(rows)],
        cwd=EXAMPLE,
        env={**os.environ, "DATABASE_URL": database.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def revision(database: Any) -> str | None:
    """The database's Alembic revision (``None`` when there is no version table)."""
    if database.scalar("SELECT to_regclass('alembic_version') IS NOT NULL") != "t":
        return None
    return database.scalar("SELECT string_agg(version_num, ',') FROM alembic_version") or None


def counts(database: Any) -> dict[str, int]:
    return {t: int(database.scalar(f"SELECT count(*) FROM {t}")) for t in ("project", "worker", "task", "comment")}
