"""The operator rehearses a migration on a scratch copy (spec.rehearsal), on the real test bed.

1. A migration that loses rows on real data is caught by the rehearsal: the run ends Failed, the
   real database is byte-identical (schema dump + per-table row checksums) with its
   ``pg_stat_user_tables`` counters unchanged, no real migrate or restore Job ran, and the scratch
   database is gone.
2. The scratch database is gone after the run is deleted mid-rehearsal (the finalizer waits for the
   drop Job) and after the operator is SIGKILLed mid-rehearsal (the restarted operator drops the
   database status names, then migrates for real; `make test-full` only).
3. Rows the rehearsed migration deleted, which the offline plan did not flag, make the run wait under
   ``plan.destructive: approve``: a rejection leaves the database as it was, an approval migrates.

The first test on PostgreSQL 15 and 18 (18 in `make test-full`: tests/conftest.py), the others on 15
only: the rehearsal's steps are proven on both in tests/steps/test_rehearse.py, and what they add is
the operator's.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Any

import pytest

from testbed.postgres import PostgresServer
from tests.e2e import appdb, dbstate

REHEARSAL = {"rehearsal": {"enabled": True}}
STEP_LABEL = "alembic-operator.dev/step"
WAITING = "AwaitingApproval"
APPROVE = "alembic-operator.dev/approve-migration"
REJECT = "alembic-operator.dev/reject-migration"


@pytest.fixture(scope="module")
def pg(request: pytest.FixtureRequest) -> PostgresServer:
    """This module's server: PostgreSQL 15, and 18 where a test asks for it (see the module docstring)."""
    return request.getfixturevalue(getattr(request, "param", "pg15"))  # type: ignore[no-any-return]


def scratch_exists(database: Any, name: str) -> bool:
    return database.scalar(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"


def wait_for(what: str, check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def steps_run(app: Any) -> collections.Counter[str]:
    return collections.Counter(j["metadata"]["labels"][STEP_LABEL] for j in app.jobs())


@pytest.mark.parametrize("pg", ["pg15", "pg18"], indirect=True)
def test_a_migration_that_fails_on_real_data_is_caught_by_the_rehearsal_and_the_database_is_untouched(
    app: Any, database: Any
) -> None:
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 100)
    before = dbstate.capture(database)
    counters = dbstate.settled_counters(database)

    app.apply(app.manifest("caught", image="example-app:deletes-rows", spec=REHEARSAL))
    status = app.wait("caught", timeout=300)["status"]

    assert status["phase"] == "Failed", status
    assert status["message"].startswith("rehearsal failed: verify failed: "), status["message"]
    assert status["message"].endswith("; the database was not touched")
    rehearsal = status["rehearsal"]
    assert rehearsal["outcome"] == "Failed" and rehearsal["verify"].startswith("Failed: ")
    assert rehearsal["dropped"] is True
    assert set(rehearsal["durationsSeconds"]) == {"prepare", "migrate", "verify", "drop"}
    deleted = {w["table"]: w["deleted"] for w in rehearsal["writes"]}
    assert deleted.get("public.task", 0) > 0, rehearsal  # what the migration did, seen on the copy
    assert not scratch_exists(database, rehearsal["database"])
    ran = steps_run(app)
    assert "migrate" not in ran and "restore" not in ran, ran  # no real migration, nothing to restore
    assert ran["rehearse-drop"] == 1
    assert dbstate.capture(database) == before
    assert dbstate.settled_counters(database) == counters


def test_the_scratch_database_is_dropped_when_the_run_is_deleted_mid_rehearsal(app: Any, database: Any) -> None:
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 50)
    before = dbstate.capture(database)

    # Deleted while the rehearsed migration runs (the slow scenario sleeps in it).
    app.apply(app.manifest("deleted", image="example-app:slow", spec=REHEARSAL))
    wait_for(
        "the rehearsed migration",
        lambda: "rehearseMigrate" in (app.get("deleted").get("status") or {}).get("steps", {}),
    )
    scratch = app.get("deleted")["status"]["rehearsal"]["database"]
    assert scratch_exists(database, scratch)  # the copy is there: the deletion must drop it
    app.cluster.kubectl("-n", app.namespace, "delete", "mrun", "deleted", "--wait=false")
    wait_for("the deleted run to go", lambda: "deleted" not in _run_names(app))
    assert not scratch_exists(database, scratch)
    assert any("deleted mid-rehearsal" in m for _t, _r, m in app.events("deleted"))
    assert dbstate.capture(database) == before


# Only in `make test-full` (CI's budget, issue 17): an operator killed mid-phase resuming without running a
# step twice is proven in `make test` for four phases (tests/e2e/test_operator_restarts.py); this adds the fifth.
@pytest.mark.full
def test_an_operator_killed_mid_rehearsal_restarts_finishes_the_run_and_drops_the_scratch_database(
    app: Any, database: Any, operator: Any
) -> None:
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 50)

    # The operator SIGKILLed as the run enters Rehearsing; the restarted one finishes and drops the copy.
    app.apply(app.manifest("killed", image="example-app:slow", spec=REHEARSAL))
    app.wait("killed", phases={"Rehearsing"}, timeout=240)
    operator.kill()
    operator.start()
    status = app.wait("killed", timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["rehearsal"]["dropped"] is True and status["rehearsal"]["outcome"] == "Succeeded"
    assert not scratch_exists(database, status["rehearsal"]["database"])
    killed_jobs = collections.Counter(
        j["metadata"]["labels"][STEP_LABEL]
        for j in app.jobs()
        if j["metadata"]["labels"].get("alembic-operator.dev/run") == "killed"
    )
    assert all(count == 1 for count in killed_jobs.values()), killed_jobs
    # the slow scenario inserts its marker once in the real database; the copy's went with the copy
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'") == "1"


def _run_names(app: Any) -> list[str]:
    out = app.cluster.kubectl("-n", app.namespace, "get", "mrun", "-o", "json").stdout
    return [r["metadata"]["name"] for r in json.loads(out)["items"]]


def test_rows_a_rehearsal_deleted_wait_for_approval_under_approve_and_a_rejection_touches_nothing(
    app: Any, database: Any
) -> None:
    """The deletes-rows scenario's DELETEs have WHERE clauses: the plan does not call them destructive.
    The rehearsal sees the copy lose rows (verify allows it here), so under approve the run waits."""
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 100)
    before = dbstate.capture(database)
    spec = {
        **REHEARSAL,
        "plan": {"destructive": "approve"},
        "verify": {"rowCounts": {"allowDecrease": ["public.task", "public.comment"]}},
    }

    app.apply(app.manifest("rejected", image="example-app:deletes-rows", spec=spec))
    status = app.wait("rejected", phases={WAITING, "Failed", "Succeeded"}, timeout=300)["status"]
    assert status["phase"] == WAITING, status
    assert status["approval"]["reasons"][0].startswith("the rehearsal deleted public.task: "), status["approval"]
    assert status["rehearsal"]["dropped"] is True
    app.cluster.kubectl("-n", app.namespace, "annotate", "mrun", "rejected", f"{REJECT}=alice")
    status = app.wait("rejected", timeout=120)["status"]
    assert status["phase"] == "Failed" and "rejected by alice" in status["message"], status
    assert "migrate" not in steps_run(app)
    assert dbstate.capture(database) == before

    app.apply(app.manifest("approved", image="example-app:deletes-rows", spec=spec))
    app.wait("approved", phases={WAITING}, timeout=300)
    app.cluster.kubectl("-n", app.namespace, "annotate", "mrun", "approved", f"{APPROVE}=bob")
    status = app.wait("approved", timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["approval"]["by"] == "bob"
    assert int(database.scalar("SELECT count(*) FROM task")) < int(before.rows["public.task"].split(":")[0])
