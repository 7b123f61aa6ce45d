"""Approval before migrating and the drift check (issue 16), on the real test bed.

Approval: the run waits in AwaitingApproval, a person's annotation decides, and a rejected run
leaves the database exactly as it was. One test, both decisions (PostgreSQL 15 and 18 through the
``database`` fixture): ``plan.destructive: approve`` with the destructive scenario waits and is
rejected; then ``approval.required: true`` with the example app waits and is approved through to
Succeeded. Drift: a column the models do not know is reported (warn: Succeeded) and fails the run
(fail: rolled back). The rehearsal is proven at step level (tests/steps/test_rehearse.py) and through
the operator (tests/e2e/test_rehearsal_operator.py).
"""

from __future__ import annotations

from typing import Any

from testbed.apps import TERMINAL
from tests.e2e import appdb, dbstate

WAITING = "AwaitingApproval"
APPROVE = "alembic-operator.dev/approve-migration"
REJECT = "alembic-operator.dev/reject-migration"


def test_a_run_waits_for_approval_a_rejection_touches_nothing_and_an_approval_migrates(app: Any, database: Any) -> None:
    appdb.migrate_to(database, "0003")  # a revision to migrate: a run at the target ends after its plan
    appdb.seed(database, 50)
    before = dbstate.capture(database)
    counters = dbstate.settled_counters(database)

    app.apply(app.manifest("risky", image="example-app:destructive", spec={"plan": {"destructive": "approve"}}))
    status = app.wait("risky", phases={WAITING, *TERMINAL}, timeout=240)["status"]
    assert status["phase"] == WAITING, status
    assert status["approval"]["state"] == "Waiting" and "DROP" in status["approval"]["summary"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Reconciling"]["status"] == "True" and conditions["Stalled"]["status"] == "False"
    assert "Waiting" in app.cluster.kubectl("-n", app.namespace, "get", "mrun", "risky").stdout  # printer column
    waiting = [m for t, r, m in app.events("risky") if r == WAITING]
    assert waiting and APPROVE in waiting[0]

    app.cluster.kubectl("-n", app.namespace, "annotate", "mrun", "risky", f"{REJECT}=alice")
    status = app.wait("risky", timeout=120)["status"]
    assert status["phase"] == "Failed", status
    assert status["message"] == "the migration was rejected by alice; the database was not touched"
    assert status["approval"]["state"] == "Rejected" and status["approval"]["by"] == "alice"
    assert set(status["steps"]) == {"plan"}  # no backup, no migration
    assert any(r == "MigrationRejected" for _t, r, _m in app.events("risky"))
    assert dbstate.capture(database) == before
    assert dbstate.settled_counters(database) == counters

    app.apply(app.manifest("gated", spec={"approval": {"required": True}}))
    status = app.wait("gated", phases={WAITING, *TERMINAL}, timeout=240)["status"]
    assert status["phase"] == WAITING and status["approval"]["reasons"] == ["approval.required is true"], status
    assert dbstate.capture(database) == before
    app.cluster.kubectl("-n", app.namespace, "annotate", "mrun", "gated", f"{APPROVE}=bob")
    status = app.wait("gated", timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["approval"]["state"] == "Approved" and status["approval"]["by"] == "bob"
    assert any(r == "MigrationApproved" and "bob" in m for _t, r, m in app.events("gated"))


def test_drift_between_the_models_and_the_database_is_reported_with_warn_and_rolls_back_with_fail(
    app: Any, database: Any
) -> None:
    appdb.migrate_to(database, "0004")
    database.execute("ALTER TABLE task ADD COLUMN added_by_hand integer")

    app.apply(app.manifest("drift-warn", spec={"verify": {"drift": "warn"}}))
    status = app.wait("drift-warn", timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["drift"]["differences"] == ["remove_column task.added_by_hand"]
    assert any(r == "SchemaDrift" and t == "Warning" for t, r, _m in app.wait_event("drift-warn", "SchemaDrift"))

    app.apply(app.manifest("drift-fail", spec={"verify": {"drift": "fail"}}))
    status = app.wait("drift-fail", timeout=300)["status"]
    assert status["phase"] == "RolledBack", status
    assert status["message"].startswith("schema drift check failed: 1 difference(s)"), status["message"]
    assert status["steps"]["drift"]["reason"] == "SchemaDrift"
