"""Shared set-up of the fault tests: a seeded database, its twin, the PostgreSQL version to run on."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from testbed import faults, operating, tools
from testbed.pytest_data import Database
from tests.e2e import appdb

#: Parametrize the ``pg`` fixture (behind ``database`` and ``app``) to PostgreSQL 15 only.
on_pg15 = pytest.mark.parametrize("pg", [15], indirect=True, ids=["pg15"])

SCENARIOS = tools.REPO / "alembic" / "scenarios"
CLI = str(tools.REPO / ".venv" / "bin" / "alembic-operator")


def seeded(database: Any, rows: int = 300, revision: str = "0004") -> None:
    """The example app at ``revision`` with ``rows`` realistic rows, as its own tooling would make it."""
    appdb.migrate_to(database, revision)
    appdb.seed(database, rows)


def twin(database: Database) -> Database:
    """A byte-for-byte copy of ``database`` (CREATE DATABASE ... TEMPLATE) on the same server."""
    name = f"{database.name}_twin"
    database.server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database.name}"')
    return Database(name=name, url=database.server.url(name), server=database.server)


def migrate_by_hand(database: Database, scenario: str) -> subprocess.CompletedProcess[str]:
    """Run a scenario's migration directly (no operator): what the failed migration leaves behind."""
    env = {**os.environ, "DATABASE_URL": database.url, **operating.image_env()}
    return subprocess.run(
        [CLI, "--termination-message-path", "/dev/null", "migrate", "--target", "head"],
        cwd=SCENARIOS / scenario,
        env=env,
        capture_output=True,
        text=True,
    )


def activity(database: Any, pattern: str) -> bool:
    """Whether another session of ``database`` runs a statement matching ``pattern`` (ILIKE)."""
    count = database.server.scalar(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database.name}' AND query ILIKE '{pattern}' "
        "AND pid <> pg_backend_pid()"
    )
    return count != "0"


TERMINAL = {"Succeeded", "Failed", "RolledBack", "RollbackFailed"}
APPROVE = "alembic-operator.dev/approve-restore=true"


def end_of_rollback(app: Any, name: str, fault: Any, timeout: float = 240) -> dict[str, Any]:
    """Wait for the run's end; if it holds its restore (possible foreign writes), approve it as a person would.

    A migration killed mid-transaction leaves write counters behind (its aborted
    inserts count) and cannot report its own writes, so the restore may stop at
    RollbackHeld — safety rule 3 — until someone approves. The row notes it.
    """
    status = app.wait(name, TERMINAL | {"RollbackHeld"}, timeout=timeout)["status"]
    if status["phase"] == "RollbackHeld":
        fault.note(f"held before restoring, then approved: {status['message'][:160]}")
        approve(app, name)
        status = app.wait(name, TERMINAL, timeout=timeout)["status"]
    return status


#: A table only the test writes to, as another session of the application would.
SIDE_TABLE = "fault_side_writes"


def hold_after_backup(app: Any, database: Any, name: str, timeout: float = 240) -> dict[str, Any]:
    """Write a row as another session once ``name``'s backup is taken, and wait for its RollbackHeld.

    The restore then holds (safety rule 3) with the database as the failed migration
    left it: a fixed point to measure "nothing was touched" against, and time to
    inject a fault before :func:`approve` lets the restore go. :func:`side_table`
    creates the table before the run.
    """
    faults.wait_for_backup(app, name)
    database.execute(f"INSERT INTO {SIDE_TABLE} VALUES (1)")
    status = app.wait(name, TERMINAL | {"RollbackHeld"}, timeout=timeout)["status"]
    assert status["phase"] == "RollbackHeld", status
    return status


def side_table(database: Any) -> None:
    """The table :func:`hold_after_backup` writes to."""
    database.execute(f"CREATE TABLE {SIDE_TABLE} (id int NOT NULL)")


def approve(app: Any, name: str) -> None:
    """Approve a held restore, as a person would."""
    app.cluster.kubectl("-n", app.namespace, "annotate", "migrationrun", name, APPROVE, "--overwrite")
