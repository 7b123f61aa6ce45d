"""Bring an app database to a revision with realistic rows, the way the app's own tooling would."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from testbed import operating, tools

EXAMPLE = tools.REPO / "alembic" / "example"
CLI = str(tools.REPO / ".venv" / "bin" / "alembic-operator")
PYTHON = str(tools.REPO / ".venv" / "bin" / "python")


def migrate_to(database: Any, revision: str) -> None:
    env = {**os.environ, "DATABASE_URL": database.url, **operating.image_env()}
    subprocess.run(
        [CLI, "--termination-message-path", "/dev/null", "migrate", "--target", revision],
        cwd=EXAMPLE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def seed(database: Any, rows: int) -> None:
    env = {**os.environ, "DATABASE_URL": database.url}
    subprocess.run(
        [PYTHON, "-m", "taskapp.seed", "--rows", str(rows)],
        cwd=EXAMPLE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
