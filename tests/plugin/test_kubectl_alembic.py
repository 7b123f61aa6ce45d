"""``kubectl alembic`` through the real kubectl, against real runs on the test bed (issue 19).

One module fixture makes three runs on one database, one after the other, as on-call
meets them: one Succeeded, one RolledBack (a migration deleting rows), one
RollbackHeld (the application kept writing). Each command runs as
``kubectl alembic ...``: kubectl finds ``kubectl-alembic`` (the console script in
.venv/bin) on PATH, exactly as a user's shell would, with the admin's KUBECONFIG.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from testbed import procs, tools
from testbed.apps import TERMINAL, App
from testbed.pytest_data import Database
from tests.e2e import appdb
from tests.e2e.writer import Writer

APPROVE = "alembic-operator.dev/approve-restore"
APPROVE_MIGRATION = "alembic-operator.dev/approve-migration"
REJECT_MIGRATION = "alembic-operator.dev/reject-migration"


@dataclass
class Runs:
    """The three runs and how to call the plugin against them."""

    app: App
    env: dict[str, str]
    database: Database

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``kubectl ARGS`` with the plugin on PATH, as the admin; the run's namespace is the context's."""
        done = subprocess.run(
            [str(tools.binary("kubectl")), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def alembic(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = self.kubectl("alembic", *args, "-n", self.app.namespace, check=check)
        print(f"\n$ kubectl alembic {' '.join(args)} -n {self.app.namespace}\n{done.stdout}{done.stderr}")  # for -s
        return done

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.app.get(name)["status"])


@pytest.fixture(scope="module")
def runs(cluster: Any, operator: Any, pg15: Any, s3: Any) -> Iterator[Runs]:
    namespace = f"plugin-{os.getpid()}"
    cluster.kubectl("create", "namespace", namespace)
    procs.wait_until(
        lambda: cluster.kubectl("-n", namespace, "get", "serviceaccount", "default", check=False).returncode == 0,
        30,
        "the default ServiceAccount",
    )
    name = pg15.create_database()
    database = Database(name=name, url=pg15.url(name), server=pg15)
    app = App(cluster=cluster, namespace=namespace, database_url=database.url, s3=s3, bucket=s3.create_bucket())
    app.create_secrets()
    path = os.pathsep.join([str(tools.binary("kubectl").parent), str(tools.REPO / ".venv" / "bin"), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(cluster.kubeconfig)}
    try:
        app.apply(app.manifest("ok-1"))
        assert app.wait("ok-1")["status"]["phase"] == "Succeeded"
        appdb.seed(database, 300)
        app.apply(app.manifest("rb-1", image="example-app:deletes-rows"))
        assert app.wait("rb-1", timeout=240)["status"]["phase"] == "RolledBack"
        writer = Writer(database.url, prefix="live").start()
        try:
            procs.wait_until(lambda: len(writer.committed) >= 5, 120, "the writer's first rows")
            retention = {"backup": {"retention": {"keepLast": 2}}}
            app.apply(app.manifest("held-1", image="example-app:deletes-rows", spec=retention))
            held = app.wait("held-1", phases={"RollbackHeld", *TERMINAL}, timeout=240)
        finally:
            writer.stop()
        assert held["status"]["phase"] == "RollbackHeld", held["status"]
        yield Runs(app=app, env=env, database=database)
    finally:
        with contextlib.suppress(Exception):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false")
        with contextlib.suppress(Exception):
            pg15.drop_database(name)


def test_status_tells_each_step_and_the_backup_of_a_succeeded_and_a_rolled_back_run(runs: Runs) -> None:
    ok = runs.alembic("status", "ok-1").stdout
    backup = runs.status("ok-1")["backup"]
    assert ok.splitlines()[0].startswith(f"MigrationRun {runs.app.namespace}/ok-1: Succeeded"), ok
    assert "revisions: base -> 0004" in ok
    assert backup["uri"] in ok and backup["sha256"] in ok and backup["size"] in ok
    for step in ("plan", "backup", "migrate", "verify"):
        assert f"  {step:<8} Job ok-1-{step}" in ok and "Succeeded" in ok, ok
    rolled = runs.alembic("status", "rb-1").stdout
    assert "RolledBack" in rolled.splitlines()[0]
    verify = runs.status("rb-1")["steps"]["verify"]
    assert f"Job {verify['job']}: Failed" in rolled and "restore " in rolled, rolled


def test_why_names_the_failed_step_its_message_the_backup_and_what_to_do(runs: Runs) -> None:
    status = runs.status("rb-1")
    why = runs.alembic("why", "rb-1").stdout
    assert "failed step: verify" in why, why
    assert status["steps"]["verify"]["message"] in why
    assert status["backup"]["uri"] in why
    assert "release a new run" in why
    assert runs.alembic("why", "ok-1").stdout.rstrip().endswith("nothing failed.")


def test_why_of_a_held_run_lists_the_tables_and_the_approve_and_reject_commands(runs: Runs) -> None:
    why = runs.alembic("why", "held-1").stdout
    tables = runs.status("held-1")["foreignWrites"]["tables"]
    assert any(t["table"] == "public.project" for t in tables)
    for table in tables:
        assert f"  {table['table']}: ~{table['rows']} rows" in why, why
    ns = runs.app.namespace
    assert f"kubectl alembic approve held-1 -n {ns}" in why and f"kubectl alembic reject held-1 -n {ns}" in why
    assert "failed step: verify" in why and runs.status("held-1")["backup"]["uri"] in why


def test_backups_lists_each_backup_with_size_and_run_and_what_keep_last_removes(runs: Runs) -> None:
    out = runs.alembic("backups").stdout
    lines = out.splitlines()
    assert lines[0].startswith("database Secret db, key DATABASE_URL: 3 backup(s); retention keepLast 2"), out
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["held-1", "rb-1", "ok-1"], out  # newest first
    for run in rows:
        backup = runs.status(run)["backup"]
        assert backup["size"] in rows[run] and backup["uri"] in rows[run] and backup["sha256"][:12] in rows[run]
    assert "kept" in rows["held-1"]
    assert "removed (beyond keepLast 2)" in rows["rb-1"] and "removed (beyond keepLast 2)" in rows["ok-1"]


def test_logs_prints_the_step_pods_in_step_order(runs: Runs) -> None:
    done = runs.alembic("logs", "rb-1")
    headers = [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("==> step ")]
    steps = [h.removeprefix("==> step ") for h in headers]
    assert steps == ["plan", "backup", "migrate", "verify", "restore"], done.stdout
    # under each header the container's log, or (the bed's kubelet serves no pods/log) the step's own result
    for step, section in zip(steps, done.stdout.split("==> step ")[1:], strict=True):
        assert f'"step":"{step}"' in section or "(log unavailable" not in section, section


def test_reject_refuses_a_run_that_holds_nothing_and_leaves_it(runs: Runs) -> None:
    done = runs.alembic("reject", "ok-1", check=False)
    assert done.returncode == 1 and "Succeeded, not RollbackHeld" in done.stderr, done
    assert runs.status("ok-1")["phase"] == "Succeeded"


def test_approve_names_the_user_in_the_annotation_and_the_held_restore_runs(runs: Runs) -> None:
    user = _caller(runs)
    done = runs.alembic("approve", "held-1")
    assert f"as {user}" in done.stdout, done.stdout
    assert runs.app.get("held-1")["metadata"]["annotations"][APPROVE] == user
    assert runs.app.wait("held-1", timeout=240)["status"]["phase"] == "RolledBack"


def _caller(runs: Runs) -> str:
    return str(json.loads(runs.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]["username"])


def _counts(runs: Runs, tables: list[dict[str, Any]]) -> dict[str, int]:
    quoted = {".".join(t["name"]): ".".join(f'"{part}"' for part in t["name"]) for t in tables}
    return {label: int(runs.database.scalar(f"SELECT count(*) FROM {name}")) for label, name in quoted.items()}


def test_restore_prints_commands_that_put_a_chosen_backup_back_by_hand(runs: Runs) -> None:
    """Runs last: the printed commands, run by bash exactly as printed, restore rb-1's backup over the
    database the approved held-1 restore left (other rows in public.project): every table's rows as
    rb-1's manifest counted them. A hold (exit 42: writes since that backup) is passed with the printed
    third command, as a person would after reading what it lists."""
    status = runs.status("rb-1")
    out = runs.alembic("restore", "rb-1").stdout
    assert status["backup"]["uri"] in out and status["backup"]["sha256"] in out, out
    assert runs.database.url not in out and runs.app.s3.secret_key not in out, "a credential is printed"
    commands = [line[2:] for line in out.splitlines() if line.startswith("  ")]
    exports = [c for c in commands if c.startswith("export ")]
    hold, discard = [c for c in commands if c.startswith("alembic-operator restore")]
    assert hold.endswith("--on-foreign-writes hold") and discard.endswith("--on-foreign-writes restore")
    bucket, _, key = status["backup"]["manifestUri"].removeprefix("s3://").partition("/")
    manifest = json.loads(runs.app.s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    expected = {".".join(t["name"]): int(t["rows"]) for t in manifest["tables"]}
    assert _counts(runs, manifest["tables"]) != expected, "the database already holds rb-1's backup"

    def bash(*lines: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-euc", "\n".join(lines)], env=runs.env, capture_output=True, text=True, timeout=300
        )
        print(f"\n$ {lines[-1]}\nexit {done.returncode}\n{done.stdout}{done.stderr[-2000:]}")  # for -s
        return done

    done = bash(*exports, hold)
    if done.returncode == 42:  # held: other sessions wrote since rb-1's backup; nothing was changed
        assert "ForeignWrites" in done.stdout + done.stderr, done
        done = bash(*exports, discard)
    assert done.returncode == 0, done
    assert _counts(runs, manifest["tables"]) == expected


def test_approve_migration_and_reject_migration_decide_as_the_caller(runs: Runs) -> None:
    """Two runs on a database of their own (no queue behind the held run) wait for approval
    (approval.required). reject-migration ends the first Failed with no backup; approve-migration lets
    the second go on to Succeeded; each annotation and the recorded decision carry the caller's name; a
    run that waits for nothing is refused and left as is."""
    user = _caller(runs)
    refused = runs.alembic("approve-migration", "ok-1", check=False)
    assert refused.returncode == 1 and "Succeeded, not AwaitingApproval" in refused.stderr, refused
    assert APPROVE_MIGRATION not in (runs.app.get("ok-1")["metadata"].get("annotations") or {})
    server = runs.database.server
    database = server.create_database()
    url = f"--from-literal=DATABASE_URL={server.url(database)}"
    runs.kubectl("-n", runs.app.namespace, "create", "secret", "generic", "gate-db", url)
    gate = {"approval": {"required": True}, "database": {"urlSecretRef": {"name": "gate-db"}}}
    decided = {}
    try:
        for name, command, annotation in (
            ("gate-1", "reject-migration", REJECT_MIGRATION),
            ("gate-2", "approve-migration", APPROVE_MIGRATION),
        ):
            runs.app.apply(runs.app.manifest(name, spec=gate))
            waiting = runs.app.wait(name, phases={"AwaitingApproval", *TERMINAL}, timeout=240)
            assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]
            assert f"as {user}" in runs.alembic(command, name).stdout
            assert runs.app.get(name)["metadata"]["annotations"][annotation] == user
            decided[name] = runs.app.wait(name, timeout=240)["status"]
    finally:
        with contextlib.suppress(Exception):
            server.drop_database(database)
    rejected, approved = decided["gate-1"], decided["gate-2"]
    assert rejected["phase"] == "Failed" and f"rejected by {user}" in rejected["message"], rejected
    assert "backup" not in (rejected.get("steps") or {}), rejected
    assert approved["phase"] == "Succeeded", approved
    assert approved["approval"]["state"] == "Approved" and approved["approval"]["by"] == user, approved
