"""Users' own Alembic projects (tests/projects/), migrated by the migrate step with their unmodified env.py and ini.

Each project is what ``alembic init`` (async or generic template) wrote, plus
revisions and, where the pattern is the point, the one change a real app
makes (its own URL variable, a worker-thread event loop,
``transaction_per_migration``, its models' naming convention). For each, on
one PostgreSQL 15 server:

* the step's schema equals what ``alembic upgrade`` with the same env.py and
  ini gives when run by hand (``pg_dump --schema-only``);
* a failure injected in revision 0003 ends with nothing committed and the data
  intact, or, where revisions committed before it (``transaction_per_migration``,
  ``autocommit_block``), with the migration's own writes fully accounted: the
  write counters from the step's start to its end minus its own writes leave
  nothing, so a restore would not be held for "other sessions' writes".

Alembic's ``multidb`` template is not among them: it migrates several
databases from one env.py, and a run has one database (one backup, one lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alembic_operator.api import location
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import sessions
from testbed.postgres import PostgresServer
from testbed.pytest_data import Database
from tests.example.support import schema_dump
from tests.steps import CONSOLE, checksums, location_for, step_env
from tests.steps.projects import PROJECTS, PROJECTS_DIR, by_hand, folder


@pytest.fixture
def db15(pg15: PostgresServer) -> Iterator[Any]:
    """Fresh databases on the PostgreSQL 15 server, dropped after the test."""
    made: list[str] = []

    def make() -> Database:
        name = pg15.create_database()
        made.append(name)
        return Database(name=name, url=pg15.url(name), server=pg15)

    yield make
    for name in made:
        pg15.drop_database(name)


def _migrate(
    name: str, db: Database, s3: Any, tmp_path: Path, *args: str, loc: str | None = None, **extra: str
) -> tuple[int, dict[str, Any]]:
    project = PROJECTS[name]
    argv = ["migrate"]
    if project.url_env:
        argv += ["--url-env", project.url_env]
    if project.flask_app:
        argv += ["--flask-app", project.flask_app, "--config", "migrations/alembic.ini"]
    argv += args
    term = tmp_path / f"termination-{os.urandom(4).hex()}.json"
    # in the project's folder, as in the app image: alembic.ini there, prepend_sys_path = . finds its models
    proc = subprocess.run(
        [str(CONSOLE), "--termination-message-path", str(term), *argv],
        cwd=folder(name),
        env=step_env(database_url=db.url, s3=s3, location=loc, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert term.exists(), proc.stderr
    return proc.returncode, dict(json.loads(term.read_text()))


def _stats(s3: Any, loc: str, name: str) -> dict[str, Any]:
    parsed = location.Location.parse(loc)
    body = s3.client().get_object(Bucket=parsed.bucket, Key=parsed.key(name))["Body"].read()
    return dict(json.loads(body))


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_the_step_migrates_the_project_as_alembic_upgrade_by_hand_does(name, db15, s3, bucket, tmp_path):
    project = PROJECTS[name]
    manual, stepped = db15(), db15()
    by_hand(name, manual, project.target)
    loc = location_for(bucket, f"{name.replace('_', '-')}-ok")

    code, result = _migrate(name, stepped, s3, tmp_path, "--target", project.target, loc=loc)

    assert code == 0, result
    assert result["data"]["noop"] is False
    assert schema_dump(stepped) == schema_dump(manual)
    assert checksums(stepped) == checksums(manual)
    end = _stats(s3, loc, location.STATS_MIGRATE_END)
    assert end["sessions"] >= 1 and end["unmarkedSessions"] == 0  # every session got our name and lock_timeout
    assert end["ownWritesComplete"] is True


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_failure_in_the_project_leaves_nothing_or_only_its_own_accounted_writes(name, db15, s3, bucket, tmp_path):
    project = PROJECTS[name]
    db = db15()
    if project.start:
        code, result = _migrate(name, db, s3, tmp_path, "--target", project.start)
        assert code == 0, result
    before_data, before_schema = checksums(db), schema_dump(db)
    loc = location_for(bucket, f"{name.replace('_', '-')}-fail")

    if project.inject_sql:
        db.execute(project.inject_sql)
        before_data, before_schema = checksums(db), schema_dump(db)
    inject = {} if project.inject_sql else {"INJECT_FAILURE": project.failure}
    code, result = _migrate(name, db, s3, tmp_path, "--target", project.target, loc=loc, **inject)

    assert code == 22 and result["reason"] == "MigrationFailed", result
    assert f"revision {project.failing}" in result["message"]
    if project.start:
        assert result["changedDatabase"] is False, result
        assert "no changes were committed" in result["message"]
        assert checksums(db) == before_data and schema_dump(db) == before_schema
    else:
        assert result["changedDatabase"] is True, result
        assert result["data"]["applied"] == list(project.committed)
    start = _stats(s3, loc, location.STATS_MIGRATE_START)
    end = _stats(s3, loc, location.STATS_MIGRATE_END)
    own = writecounters.own_writes(end)
    assert own is not None, end
    assert writecounters.foreign(backup=start["stats"], now=end["stats"], own=own) == {}


def test_the_envs_own_sessions_carry_the_runs_name_and_lock_timeout(db15, s3, tmp_path):
    """generic_template's env.py opens its own engine: a table lock held elsewhere stops it at lock_timeout."""
    db = db15()
    assert _migrate("generic_template", db, s3, tmp_path, "--target", "0001")[0] == 0
    seen: list[tuple[str, str]] = []
    holder = psycopg.connect(db.url)
    try:
        holder.cursor().execute("LOCK TABLE customer IN ACCESS SHARE MODE")  # blocks ALTER TABLE customer

        def watch() -> None:
            with psycopg.connect(db.url, autocommit=True) as looker:
                for _ in range(100):
                    cur = looker.cursor()
                    cur.execute(
                        "SELECT application_name, wait_event_type FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name LIKE 'alembic-operator:migrate%'"
                    )
                    rows = cur.fetchall()
                    if any(w == "Lock" for _, w in rows):
                        seen.extend(rows)
                        return
                    time.sleep(0.1)

        looker = threading.Thread(target=watch)
        looker.start()
        started = time.monotonic()
        code, result = _migrate("generic_template", db, s3, tmp_path, "--lock-timeout", "2s")
        took = time.monotonic() - started
        looker.join()
    finally:
        holder.close()
    assert code == 22 and result["changedDatabase"] is False, result
    assert "lock_timeout 2s" in result["message"]
    assert took < 60
    # the step's own lock session and the env's engine, both named for the run; the env's waits on the lock
    assert len(seen) >= 2 and len({n for n, _ in seen}) == 1, seen


def test_a_plan_names_each_revision_it_cannot_render_and_classifies_all_the_others(tmp_path):
    """tests/projects/data_migrations: 0002 reads the database, 0004 refuses offline mode; no database needed."""
    term, plan_sql = tmp_path / "plan.json", tmp_path / "plan.sql"
    proc = subprocess.run(
        [str(CONSOLE), "--termination-message-path", str(term), "plan", "--from", "base", "--output", str(plan_sql)],
        cwd=PROJECTS_DIR / "data_migrations",
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(term.read_text())
    assert proc.returncode == 0 and result["ok"] is True, proc.stderr

    data = result["data"]
    assert data["rendered"] is False
    assert [u["revision"] for u in data["unrendered"]] == ["0002", "0004"]
    assert "runs online only" in data["unrendered"][1]["reason"]
    # the revisions after each unrendered one are still read and classified
    assert {(f["revision"], f["kind"]) for f in data["destructive"]} == {
        ("0003", "drop_table"),
        ("0005", "drop_constraint"),
    }  # 0005's int -> bigint only widens
    assert [(u["revision"], u["kind"]) for u in data["unchecked"]] == [("0003", "do_block")]
    assert data["declaredAllowances"] == [{"revision": "0003", "table": "legacy_order", "kind": "drop"}]
    assert "declared data changes: 0003 drop legacy_order" in result["message"]
    assert "0002 (" in result["message"] and "0004 (" in result["message"] and "not checked" in result["message"]
    header = plan_sql.read_text().split("\n\n", 1)[0]
    assert "NOT RENDERED: 2 revision(s)" in header
    assert "0002 not rendered offline" in header and "0004 not rendered offline" in header
    assert "0003 unchecked do_block" in header


def test_a_concurrent_index_held_up_by_a_long_transaction_is_dropped_and_named(db15, s3, bucket, tmp_path):
    """autocommit_block's 0002 builds ix_customer_tier CONCURRENTLY; a snapshot held on an unrelated table stalls it."""
    db = db15()
    assert _migrate("autocommit_block", db, s3, tmp_path, "--target", "0001")[0] == 0
    db.execute("CREATE TABLE unrelated (id int); INSERT INTO unrelated VALUES (1)")
    loc = location_for(bucket, "concurrent-index")
    with psycopg.connect(db.url) as holder:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("SELECT count(*) FROM unrelated")  # an old snapshot: every CONCURRENTLY build waits for it
        holder_pid = holder.info.backend_pid
        code, result = _migrate(
            "autocommit_block", db, s3, tmp_path, "--target", "0002", "--concurrent-lock-timeout", "2s", loc=loc
        )
        holder.rollback()

    assert code == 22 and result["reason"] == "MigrationFailed", result
    message = result["message"]
    assert "CREATE INDEX CONCURRENTLY ix_customer_tier did not finish" in message
    assert f"pid {holder_pid} " in message and "up to 2s" in message
    assert "the INVALID index ix_customer_tier it left was dropped" in message
    assert "a retry needs those transactions to end first" in message
    assert db.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == "0"
    assert db.scalar("SELECT to_regclass('ix_customer_tier') IS NULL") == "t"
    # the autocommit block committed 0002's new column first: a restore is due, and its own writes are all known
    assert result["changedDatabase"] is True
    end = _stats(s3, loc, location.STATS_MIGRATE_END)
    start = _stats(s3, loc, location.STATS_MIGRATE_START)
    own = writecounters.own_writes(end)
    assert own is not None and writecounters.foreign(backup=start["stats"], now=end["stats"], own=own) == {}


def test_a_retried_migrate_ends_the_session_a_killed_pod_of_its_run_left(db15, s3, bucket, tmp_path):
    """A session named for the run, idle in a transaction holding a lock (what a killed pod leaves), is ended first."""
    db = db15()
    assert _migrate("generic_template", db, s3, tmp_path, "--target", "0001")[0] == 0
    loc = location_for(bucket, "retried")
    orphan = psycopg.connect(db.url, application_name=sessions.migrate_application_name(loc))
    try:
        orphan.execute("LOCK TABLE customer IN ACCESS SHARE MODE")  # 0002's ALTER TABLE would wait on it
        orphan_pid = orphan.info.backend_pid

        code, result = _migrate("generic_template", db, s3, tmp_path, "--lock-timeout", "3s", loc=loc)
    finally:
        with contextlib.suppress(psycopg.Error):
            orphan.close()

    assert code == 0, result
    assert result["data"]["orphansEnded"] == [orphan_pid]
    assert db.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {orphan_pid}") == "0"


def test_a_migrate_killed_after_committed_revisions_leaves_their_writes_accounted(db15, s3, bucket, tmp_path):
    """transaction_per_migration: 0001 and 0002 commit, the pod is killed (SIGKILL) in 0003; no end of step ran."""
    db = db15()
    loc = location_for(bucket, "killed")
    project = folder("transaction_per_migration")
    env = step_env(database_url=db.url, s3=s3, location=loc, INJECT_FAILURE="hang")
    proc = subprocess.Popen([str(CONSOLE), "migrate"], cwd=project, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.scalar("SELECT to_regclass('alembic_version') IS NOT NULL") == "t" and (
                db.scalar("SELECT version_num FROM alembic_version") == "0002"
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("0002 was never committed")
        time.sleep(1)  # 0003 has begun: the step sleeps inside it
    finally:
        proc.kill()
        proc.wait(timeout=30)

    end = _stats(s3, loc, location.STATS_MIGRATE_END)
    assert end["inProgress"] is True and end["commits"] >= 2
    own = writecounters.own_writes(end)
    assert own is not None and own["public.customer"]["n_tup_ins"] == 50 and own["public.customer"]["n_tup_upd"] == 50
    start = _stats(s3, loc, location.STATS_MIGRATE_START)
    with psycopg.connect(db.url, autocommit=True) as conn:  # the counters now, settled as the restore reads them
        for _ in range(20):
            if not conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'alembic-operator:migrate:%'"
            ).fetchall():
                break
            time.sleep(0.5)
        time.sleep(writecounters.SETTLE_INTERVAL_SECONDS)
        rows = conn.execute(
            "SELECT schemaname, relname, relid, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    now = {f"{r[0]}.{r[1]}": {"relid": r[2], "n_tup_ins": r[3], "n_tup_upd": r[4], "n_tup_del": r[5]} for r in rows}
    assert writecounters.foreign(backup=start["stats"], now=now, own=own) == {}


def test_migrate_exec_runs_the_apps_own_command_under_the_lock(db15, s3, bucket, tmp_path):
    """flask_migrate through `flask db upgrade` itself: revisions and changes are known, its own writes are not."""
    flask = f"{Path(sys.executable).with_name('flask')} --app app:create_app db upgrade"
    db = db15()
    first = _migrate("flask_migrate", db, s3, tmp_path, "--target", "0002", "--exec", f"{flask} 0002")
    assert first[0] == 0 and first[1]["data"]["applied"] == ["0001", "0002"], first
    before_data, before_schema = checksums(db), schema_dump(db)
    loc = location_for(bucket, "exec-fails")

    code, result = _migrate("flask_migrate", db, s3, tmp_path, "--exec", flask, loc=loc, INJECT_FAILURE="raise")

    assert code == 22 and result["changedDatabase"] is False, result
    assert "revision 0003" in result["message"] and "exited with 1" in result["message"]
    assert checksums(db) == before_data and schema_dump(db) == before_schema
    assert _stats(s3, loc, location.STATS_MIGRATE_END)["ownWritesComplete"] is False  # they count as foreign
