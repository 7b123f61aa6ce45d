"""The users' own Alembic projects of tests/projects/ (and Optuna's), and how their own people run them.

Shared by the step-level tests (tests/steps/test_projects.py) and the end-to-end ones
(tests/e2e/test_projects_end_to_end.py): what each project's driver, target and URL variable
are, how a failure is injected into it, and ``alembic upgrade`` (or ``flask db upgrade``)
run by hand with the project's own env.py and ini — the schema every migration of it must equal.
Must not: change a project's files, or run anything but the project's own tooling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

PROJECTS_DIR = Path(__file__).resolve().parents[1] / "projects"
BY_HAND = """
import sys
from alembic import command
from alembic.config import Config
config = Config("alembic.ini")
config.set_main_option("sqlalchemy.url", sys.argv[1])
command.upgrade(config, sys.argv[2])
"""


@dataclass(frozen=True)
class Project:
    """How the app's own people run it: driver of its URL, target, variables; how a failure is injected."""

    driver: str = "psycopg"
    target: str = "head"
    url_env: str | None = None
    failure: str = "raise"
    #: Migrate here first (data in place), then inject the failure on the way to ``target``.
    start: str | None = "0002"
    #: Revisions committed before the injected failure (from base): their writes must count as the run's own.
    committed: tuple[str, ...] = ()
    #: The project's folder (default tests/projects/<name>), where alembic.ini is and the step runs.
    directory: Path | None = None
    #: The revision the injected failure happens in; for a history we may not edit, SQL that makes it fail.
    failing: str = "0003"
    inject_sql: str | None = None
    #: Flask-Migrate: the app (``flask --app``) and its alembic.ini inside migrations/.
    flask_app: str | None = None


PROJECTS = {
    "async_template": Project(driver="asyncpg"),
    "generic_template": Project(),
    "env_var_url": Project(url_env="APP_DATABASE_URL"),
    "asyncio_thread": Project(driver="asyncpg", failure="sql"),
    "transaction_per_migration": Project(failure="sql", start=None, committed=("0001", "0002")),
    "naming_convention": Project(),
    # autocommit_block commits the transaction it interrupts (0001 and 0002's first half), then runs the CONCURRENTLY
    "autocommit_block": Project(start=None, committed=("0001",)),
    "branches": Project(target="heads"),
    # `flask db init` as generated; the URL from the app's config (its own variable), run in the app's context
    "flask_migrate": Project(url_env="APP_DATABASE_URL", flask_app="app:create_app"),
    # A real application's history, installed from PyPI and used as shipped: Optuna 5.0.0 (test extra), its
    # alembic.ini (script_location = alembic, relative to its folder) and sync env.py, 11 revisions. The failure:
    # the index its last revision creates already exists.
    "optuna": Project(
        directory=Path(optuna.__file__).parent / "storages" / "_rdb",
        start="v3.0.0.d",
        failing="v3.2.0.a",
        inject_sql="CREATE INDEX trials_study_id_key ON trials (study_id)",
    ),
}


def folder(name: str) -> Path:
    """Where the project's alembic.ini is: its own people run its migrations from here."""
    return PROJECTS[name].directory or PROJECTS_DIR / name


def _sqlalchemy_url(url: str, driver: str) -> str:
    return f"postgresql+{driver}://" + url.split("://", 1)[1]


def by_hand(name: str, db: Any, target: str) -> None:
    """``alembic upgrade target`` (Flask-Migrate: ``flask db upgrade``) as the project's people run it, on ``db``."""
    project = PROJECTS[name]
    url = _sqlalchemy_url(db.url, project.driver)
    env = {**os.environ, **({project.url_env: db.url} if project.url_env else {})}
    argv = [sys.executable, "-c", BY_HAND, url, target]
    if project.flask_app:
        argv = [str(Path(sys.executable).with_name("flask")), "--app", project.flask_app, "db", "upgrade", target]
    proc = subprocess.run(
        argv,
        cwd=folder(name),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
