"""What platform and on-call engineers rely on around a run: liveness, the destructive-change
policy, and what deleting a run mid-way does."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.e2e import appdb, dbstate


def test_the_liveness_endpoint_answers(operator):
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5) as resp:
        assert resp.status == 200


def test_a_blocking_destructive_policy_fails_the_run_before_the_backup_naming_the_statements(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 100)
    before = dbstate.capture(database)
    app.apply(app.manifest("blocked", image="example-app:destructive", spec={"plan": {"destructive": "block"}}))
    status = app.wait("blocked")["status"]
    assert status["phase"] == "Failed", status
    assert "DROP COLUMN description" in status["message"]
    assert "backup" not in status.get("steps", {})
    assert {j["metadata"]["labels"]["alembic-operator.dev/step"] for j in app.jobs()} == {"plan"}
    assert dbstate.capture(database) == before


def test_a_warning_destructive_policy_records_the_statements_and_goes_on(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 100)
    before = dbstate.capture(database)
    app.apply(app.manifest("warned", image="example-app:destructive"))
    status = app.wait("warned")["status"]
    # the run went on past the plan; the scenario also deletes every comment, which verify catches
    assert status["phase"] == "RolledBack", status
    assert dbstate.capture(database) == before
    assert any("drop_column" in d or "DROP COLUMN" in d for d in status["plan"]["destructive"]), status["plan"]
    assert "DestructiveChanges" in [reason for _t, reason, _m in app.events("warned")]


def test_deleting_a_run_mid_migration_lets_the_step_finish_then_releases_the_run(app, database):
    appdb.migrate_to(database, "0004")
    app.apply(app.manifest("deleted", image="example-app:slow"))
    app.wait("deleted", phases={"Migrating"}, timeout=120)
    app.cluster.kubectl("-n", app.namespace, "delete", "migrationrun", "deleted", "--wait=false")
    time.sleep(2)
    held = app.get("deleted")
    assert held["metadata"].get("deletionTimestamp"), "the run should still exist while its migration runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = app.cluster.kubectl("-n", app.namespace, "get", "migrationrun", "-o", "json").stdout
        if not json.loads(found)["items"]:
            break
        time.sleep(1)
    else:
        raise AssertionError("the deleted run was never released")
    # the migration that was running completed; nothing was restored and no step started after it
    assert database.scalar("SELECT version_num FROM alembic_version") == "0005"
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'") == "1"


def test_a_pod_setting_the_apiserver_rejects_fails_the_run_instead_of_retrying_forever(app, database):
    before = dbstate.capture(database)
    app.apply(app.manifest("bad-resources", spec={"podTemplate": {"resources": {"limits": {"cpu": "lots"}}}}))
    status = app.wait("bad-resources", timeout=60)["status"]
    assert status["phase"] == "Failed", status
    assert "refused Job" in status["message"] and "quantities" in status["message"], status["message"]
    assert dbstate.capture(database) == before
