"""The operator killed (SIGKILL) in each phase and restarted: the run still ends right, no step runs twice.

Every state lives on the MigrationRun's status and Job names are deterministic,
so a restarted operator adopts the Jobs it created instead of creating others.
"""

from __future__ import annotations

import collections

import pytest

from tests.e2e import appdb, dbstate

STEP_LABEL = "alembic-operator.dev/step"


def _jobs_per_step(app) -> dict[str, int]:
    return collections.Counter(j["metadata"]["labels"][STEP_LABEL] for j in app.jobs())


@pytest.mark.parametrize(
    ("image", "kill_in", "ends"),
    [
        ("example-app:slow", "BackingUp", "Succeeded"),
        ("example-app:slow", "Migrating", "Succeeded"),
        ("example-app:slow", "Verifying", "Succeeded"),
        ("example-app:deletes-rows", "RollingBack", "RolledBack"),
    ],
)
def test_an_operator_killed_mid_phase_resumes_without_running_a_step_twice(
    app, database, operator, image, kill_in, ends
):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 300)
    before = dbstate.capture(database)
    name = f"kill-{kill_in.lower()}"
    app.apply(app.manifest(name, image=image))
    app.wait(name, phases={kill_in}, timeout=120)
    operator.kill()
    operator.start()
    status = app.wait(name, timeout=240)["status"]
    assert status["phase"] == ends, status
    per_step = _jobs_per_step(app)
    assert all(count == 1 for count in per_step.values()), per_step
    if ends == "RolledBack":
        assert dbstate.capture(database) == before
    else:
        # the slow scenario's data migration inserts its marker row exactly once
        assert database.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'") == "1"
