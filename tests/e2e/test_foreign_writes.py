"""A rollback never silently loses the application's writes (issue #9, safety rule 3), on the real test bed.

The application keeps writing while a migration runs (Helm pre-upgrade, GitOps
rollout): a due restore that would discard those writes holds for a person;
a write fence keeps the writers out instead; a migration that committed
nothing is never restored at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import procs, tools
from testbed.apps import TERMINAL
from tests.e2e import appdb, dbstate
from tests.e2e.writer import Writer

HELD = "RollbackHeld"
APPROVE = "alembic-operator.dev/approve-restore"


def _names(database: Any, prefix: str) -> set[str]:
    return {row[0] for row in database.query(f"SELECT name FROM project WHERE name LIKE '{prefix}%'")}


def test_a_rollback_that_would_discard_the_apps_writes_holds_until_approved_then_says_what_it_discarded(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 300)
    tasks_before = dbstate.capture(database).rows["public.task"]
    writer = Writer(database.url, prefix="live").start()
    try:
        procs.wait_until(lambda: len(writer.committed) >= 5, 120, "the writer's first rows")
        app.apply(app.manifest("held-1", image="example-app:deletes-rows"))
        status = app.wait("held-1", phases={HELD, *TERMINAL}, timeout=240)["status"]
        assert status["phase"] == HELD, status
        tables = {t["table"]: t["rows"] for t in status["foreignWrites"]["tables"]}
        assert tables.get("public.project", 0) > 0, status["foreignWrites"]
        assert "public.task" not in tables and "public.comment" not in tables  # the migration's own deletes
        assert status["foreignWrites"]["ownWritesKnown"] is True
        assert "public.project: ~" in status["message"] and APPROVE in status["message"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Ready"]["status"] == "False" and conditions["Stalled"]["reason"] == "RollbackHeld"
        held = [m for t, r, m in app.events("held-1") if r == "RollbackHeld"]
        assert held and "public.project" in held[0]
        assert _names(database, "live-") >= set(writer.committed[:5])  # held: the database is left alone

        app.cluster.kubectl("-n", app.namespace, "annotate", "migrationrun", "held-1", f"{APPROVE}=true")
        status = app.wait("held-1", timeout=240)["status"]
    finally:
        committed = writer.stop()
    assert status["phase"] == "RolledBack", status
    assert status["steps"]["restore"]["attempt"] == 2
    discarded = status["foreignWrites"]
    assert discarded["discarded"] is True and discarded["rows"] > 0
    assert "discarded ~" in status["message"] and "public.project" in status["message"]
    assert any(r == "ForeignWritesDiscarded" for _t, r, _m in app.events("held-1"))
    assert dbstate.capture(database).rows["public.task"] == tasks_before  # the migration's damage is undone
    lost = set(committed) - _names(database, "live-")
    assert lost, "the restore was expected to discard rows written after the backup"
    print(
        f"\nforeign writes: reported ~{discarded['rows']} discarded, {len(lost)} of {len(committed)} rows really lost"
    )


def _writer_deployment(namespace: str, log: Path, replicas: int) -> dict:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "writer", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "writer"}},
            "template": {
                "metadata": {"labels": {"app": "writer"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "writer",
                            "image": "writer:dev",
                            "env": [
                                {
                                    "name": "DATABASE_URL",
                                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "DATABASE_URL"}},
                                },
                                {"name": "WRITER_LOG", "value": str(log)},
                                {"name": "WRITER_PREFIX", "value": "fenced"},
                            ],
                        }
                    ],
                },
            },
        },
    }
    # the writer's source and its log are the host's: hostPath volumes (the log's dir writable by the image's user)
    log.parent.chmod(0o1777)
    pod = deployment["spec"]["template"]["spec"]
    pod["volumes"] = [
        {"name": "tests", "hostPath": {"path": str(tools.REPO / "tests"), "type": "Directory"}},
        {"name": "log", "hostPath": {"path": str(log.parent), "type": "Directory"}},
    ]
    pod["containers"][0]["volumeMounts"] = [
        {"name": "tests", "mountPath": f"{WRITER_SOURCE}/tests", "readOnly": True},
        {"name": "log", "mountPath": str(log.parent)},
    ]
    return deployment


WRITER_SOURCE = "/writer"
"""On the real node: where the writer's pod mounts this checkout's tests/ (a hostPath volume)."""


def _register_writer_image(kubelet: Any) -> None:
    # the example app's image (it has asyncpg) running tests/e2e/writer.py
    kubelet.register_image(
        "writer:dev",
        built_image="example-app:dev",
        workingDir=WRITER_SOURCE,
        env={"PYTHONPATH": WRITER_SOURCE},
        entrypoint=["python", "-m", "tests.e2e.writer"],
    )


def _replicas(app: Any) -> int:
    out = app.cluster.kubectl("-n", app.namespace, "get", "deployment", "writer", "-o", "json").stdout
    return int(json.loads(out)["spec"]["replicas"])


def _logged(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("kill_operator", [False, True], ids=["steady", "operator-killed-while-fenced"])
def test_a_write_fence_keeps_every_row_the_app_wrote_and_puts_the_replicas_back(
    app, database, kubelet, operator, tmp_path, kill_operator
):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 300)
    _register_writer_image(kubelet)
    log = tmp_path / "writer.log"
    app.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_writer_deployment(app.namespace, log, 2)))
    try:
        procs.wait_until(lambda: len(_logged(log)) >= 10, 120, "the writer Deployment's rows")
        spec = {"writeFence": {"scaleDown": [{"kind": "Deployment", "name": "writer"}]}}
        app.apply(app.manifest("fenced-1", image="example-app:deletes-rows", spec=spec))
        if kill_operator:

            def fence_is_up() -> bool:
                return ((app.get("fenced-1").get("status") or {}).get("fence") or {}).get("state") == "Up"

            procs.wait_until(fence_is_up, 120, "the fence to be up")
            operator.kill()
            assert _replicas(app) == 0
            operator.start()
        status = app.wait("fenced-1", phases={HELD, *TERMINAL}, timeout=240)["status"]
        assert status["phase"] == "RolledBack", status
        assert not (status.get("foreignWrites") or {}).get("rows"), status.get("foreignWrites")
        assert status["fence"]["replicas"] == {"Deployment/writer": 2}
        assert status["fence"]["state"] == "Lifted"
        assert _replicas(app) == 2
        reasons = [r for _t, r, _m in app.events("fenced-1")]
        assert "WriteFenceLifted" in reasons
        if not kill_operator:
            # Events are posted after the status write; an operator SIGKILLed in between loses
            # that pass's Events (the status above is the record), so only the steady run checks them.
            assert "WriteFenceRaised" in reasons
            assert reasons.index("WriteFenceRaised") < reasons.index("BackupStarted")
        before_lift = len(_logged(log))
        procs.wait_until(lambda: len(_logged(log)) > before_lift + 5, 60, "the writers to come back")
    finally:
        app.cluster.kubectl("-n", app.namespace, "delete", "deployment", "writer", "--wait=false")
    committed = set(_logged(log))
    missing = committed - _names(database, "fenced-")
    assert not missing, f"{len(missing)} of {len(committed)} rows the app wrote were lost: {sorted(missing)[:5]}"


def test_a_migration_that_raises_ends_failed_without_a_restore_and_keeps_every_concurrent_write(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 200)
    schema_before = dbstate.capture(database).schema
    writer = Writer(database.url, prefix="during-raise").start()
    try:
        procs.wait_until(lambda: len(writer.committed) >= 5, 120, "the writer's first rows")
        app.apply(app.manifest("raises-fw", image="example-app:raises"))
        status = app.wait("raises-fw", phases={HELD, *TERMINAL})["status"]
    finally:
        committed = writer.stop()
    assert status["phase"] == "Failed", status
    assert "no changes were committed" in status["message"] and "no restore is needed" in status["message"]
    assert "restore" not in (status.get("steps") or {})
    assert dbstate.capture(database).schema == schema_before
    assert set(committed) <= _names(database, "during-raise-")
    assert len(committed) > 20


def test_deleting_a_fenced_run_puts_the_replicas_back_and_leaves_the_database_as_it_is(
    app, database, kubelet, tmp_path
):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 100)
    _register_writer_image(kubelet)
    log = tmp_path / "writer.log"
    app.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_writer_deployment(app.namespace, log, 1)))
    try:
        procs.wait_until(lambda: len(_logged(log)) >= 5, 120, "the writer Deployment's rows")
        spec = {"writeFence": {"scaleDown": [{"kind": "Deployment", "name": "writer"}]}}
        app.apply(app.manifest("fenced-gone", image="example-app:slow", spec=spec))
        app.wait("fenced-gone", phases={"Migrating"}, timeout=120)
        assert _replicas(app) == 0
        app.cluster.kubectl("-n", app.namespace, "delete", "migrationrun", "fenced-gone", "--wait=false")
        procs.wait_until(
            lambda: (
                "fenced-gone"
                not in app.cluster.kubectl("-n", app.namespace, "get", "migrationrun", "-o", "name").stdout
            ),
            120,
            "the run to go",
        )
        assert _replicas(app) == 1
        assert database.scalar("SELECT version_num FROM alembic_version") == "0005"  # the migration finished
    finally:
        app.cluster.kubectl("-n", app.namespace, "delete", "deployment", "writer", "--wait=false")
    assert set(_logged(log)) <= _names(database, "fenced-")
