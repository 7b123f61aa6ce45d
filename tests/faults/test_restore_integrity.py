"""Restore integrity (issue 13, findings 1-8), each finding injected through a whole run on the bed.

Every row runs the operator on the real node against a database that looks
like production in the way the finding needs (large objects, database-level
state, triggers, hostile names, another application's schema, a leftover
session) and measures the end with :mod:`tests.e2e.dbstate` plus
:mod:`tests.faults.outside_tables` (what a schema-only dump does not show).
Where the restore must fail, the run is first held before its restore
(:func:`~tests.faults.support.hold_after_backup`): the database "as the failed
migration left it" is then measured, not assumed, and the fault is injected
before the approval lets the restore go.

PostgreSQL 15 only, except the one-transaction row with large objects and a
failing post-data item, whose script (transaction control around large
objects) differs by major: it runs on 15 and 18.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from alembic_operator.job.database import sessions
from testbed import faults
from testbed.pytest_data import Database
from tests.e2e import dbstate
from tests.faults import outside_tables
from tests.faults.support import (
    TERMINAL,
    activity,
    approve,
    end_of_rollback,
    hold_after_backup,
    on_pg15,
    seeded,
    side_table,
)

AS_LEFT = "the database as the failed migration left it"


def _state(database: Database) -> tuple[dbstate.DatabaseState, dict[str, list[tuple[str, ...]]]]:
    return dbstate.capture(database), outside_tables.capture(database)


def _intact(fault, database: Database, expected, *, what: str = "database state") -> None:
    schema_and_rows, rest = expected
    fault.intact(dbstate.capture(database), schema_and_rows, what=what)
    fault.intact(outside_tables.capture(database), rest, what=f"{what}: large objects, grants, database-level state")


def _held_then_approved(app, database: Database, name: str, inject=lambda: None):
    """Hold ``name``'s restore, inject the fault, measure the database as the failed migration left it
    (with the fault), then approve the restore; returns that measure."""
    hold_after_backup(app, database, name)
    inject()
    left = _state(database)
    approve(app, name)
    return left


@pytest.mark.both_majors  # the script's transaction control around large objects differs by major
@pytest.mark.fault(
    "large objects, then a post-data item fails in the restore (GRANT to a role dropped since the backup)",
    expected="RollbackFailed",
)
def test_a_restore_failing_after_its_large_objects_commits_none_of_it(app, database, fault):
    seeded(database)
    side_table(database)
    outside_tables.add_large_objects(database, 5)
    role = f"{database.name}_reader"
    database.execute(f'CREATE ROLE "{role}"; GRANT SELECT ON task TO "{role}"')
    app.apply(app.manifest("lo-grant", image="example-app:deletes-rows"))
    # The fault: the dump grants to a role that no longer exists, an item pg_restore writes after every
    # large object, row and index. Any early COMMIT in the script would leave those behind.
    left = _held_then_approved(
        app, database, "lo-grant", lambda: database.execute(f'REVOKE ALL ON task FROM "{role}"; DROP ROLE "{role}"')
    )
    status = app.wait("lo-grant", TERMINAL, timeout=300)["status"]
    fault.saw(status)
    _intact(fault, database, left, what=AS_LEFT)
    assert status["phase"] == "RollbackFailed", status
    assert f'role "{role}" does not exist' in status["message"], status["message"]
    assert "the database is unchanged" in status["message"], status["message"]
    fault.note(f"restore: {status['steps']['restore']['message'][:150]}")


SLOW_INDEX = """
CREATE FUNCTION fault_slow_key(i integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN i; END $$;
CREATE TABLE fault_slow (id integer NOT NULL);
INSERT INTO fault_slow SELECT generate_series(1, 1000);
CREATE INDEX fault_slow_key_idx ON fault_slow (fault_slow_key(id));
"""


@on_pg15
@pytest.mark.fault("large objects, then the restore SIGKILLed during an index build", expected="RollbackFailed")
def test_a_restore_killed_during_an_index_build_leaves_no_large_object_or_row_behind(app, database, fault):
    seeded(database)
    side_table(database)
    outside_tables.add_large_objects(database, 5)
    database.execute(SLOW_INDEX)  # ~5 s to build, in the restore too: time to kill it there
    app.apply(app.manifest("lo-kill", image="example-app:deletes-rows"))
    left = _held_then_approved(app, database, "lo-kill")
    pid = faults.wait_for_step_pid(app.cluster, app.namespace, "lo-kill", "restore")
    faults.wait_for(
        "the restore to build the slow index",
        lambda: activity(database, "CREATE INDEX fault_slow_key_idx%"),
        timeout=120,
        interval=0.05,
    )
    faults.kill(pid, signal.SIGKILL)
    status = app.wait("lo-kill", TERMINAL, timeout=240)["status"]
    fault.saw(status)
    _intact(fault, database, left, what=AS_LEFT)
    assert status["phase"] == "RollbackFailed", status
    assert "needs a person" in status["message"], status["message"]
    fault.note("killed restore: no result, so the operator cannot know the database is unchanged; measured: it is")


@on_pg15
@pytest.mark.fault(
    "migration changes search_path (database and role settings), default privileges, a publication, then fails",
    expected="RolledBack",
)
def test_database_level_state_a_failed_migration_changed_is_put_back(app, database, fault):
    seeded(database)
    database.execute(
        f"CREATE PUBLICATION app_pub FOR TABLE project; ALTER DATABASE \"{database.name}\" SET work_mem = '8MB'"
    )
    before = _state(database)
    app.apply(app.manifest("db-state", image="example-app:changes-database-state"))
    status = end_of_rollback(app, "db-state", fault, timeout=240)
    fault.saw(status)
    _intact(fault, database, before)
    assert status["phase"] == "RolledBack", status
    assert any("task" in v for v in status["rowCounts"]["violations"]), status["rowCounts"]


@on_pg15
@pytest.mark.fault(
    "restore pointed at another database (the run's database Secret repointed before the restore)",
    expected="RollbackFailed",
)
def test_a_restore_pointed_at_another_database_is_refused_and_touches_neither(app, database, fault):
    seeded(database)
    side_table(database)
    name = database.server.create_database()
    other = Database(name=name, url=database.server.url(name), server=database.server)
    try:
        seeded(other, rows=40)
        other_before = _state(other)
        app.apply(app.manifest("repointed", image="example-app:deletes-rows"))
        patch = json.dumps({"stringData": {"DATABASE_URL": other.url}})
        left = _held_then_approved(
            app,
            database,
            "repointed",
            lambda: app.cluster.kubectl("-n", app.namespace, "patch", "secret", "db", "-p", patch),
        )
        status = app.wait("repointed", TERMINAL, timeout=240)["status"]
        fault.saw(status)
        _intact(fault, other, other_before, what="the other database")
        _intact(fault, database, left, what=AS_LEFT)
    finally:
        database.server.drop_database(other.name)
    assert status["phase"] == "RollbackFailed", status
    message = status["message"]
    assert "taken from another database" in message and "nothing was restored" in message, message
    fault.note(f"restore: {status['steps']['restore']['message'][:150]}")


TRIGGERS = """
CREATE TABLE task_audit (id bigserial PRIMARY KEY, task_id integer, what text NOT NULL);
INSERT INTO task_audit (task_id, what) SELECT id, 'seeded' FROM task WHERE id <= 20;
CREATE FUNCTION task_touch() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN NEW.title := NEW.title || ' (touched by a trigger)'; RETURN NEW; END $$;
CREATE FUNCTION task_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.task_audit (task_id, what) VALUES (coalesce(NEW.id, OLD.id), lower(TG_OP));
  RETURN NULL;
END $$;
CREATE TRIGGER task_touch BEFORE INSERT OR UPDATE ON task FOR EACH ROW EXECUTE FUNCTION task_touch();
CREATE TRIGGER task_log AFTER INSERT OR DELETE ON task FOR EACH ROW EXECUTE FUNCTION task_log();
"""


@on_pg15
@pytest.mark.fault("tables with user triggers (rewrite rows, write an audit table) restored", expected="RolledBack")
def test_a_restore_of_tables_with_user_triggers_fires_none_of_them(app, database, fault):
    seeded(database)
    database.execute(TRIGGERS)
    before = _state(database)
    app.apply(app.manifest("triggers", image="example-app:deletes-rows"))
    status = end_of_rollback(app, "triggers", fault, timeout=240)
    fault.saw(status)
    _intact(fault, database, before)
    assert status["phase"] == "RolledBack", status
    assert database.scalar("SELECT count(*) FROM task_audit WHERE what <> 'seeded'") == "0"
    fault.note("the operator exposes no table restore (restore --table): the full restore, triggers in place")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: Quotes, dots, dollar quotes (``$$`` and the ``$f$`` tag our own SQL uses), psql backslash commands.
HOSTILE_SCHEMA = 'app"s.sch$$ema'
HOSTILE_TABLES = ('in$f$voice "2026".q1', "x\\! touch /tmp/pwned \\g", "dotted.name$$")
HOSTILE_COLUMN = _ident('va"lue $$')


@on_pg15
@pytest.mark.fault(
    "hostile names (quotes, dots, $$, $f$, a psql backslash command) through backup, verify, restore",
    expected="RolledBack",
)
def test_hostile_names_go_through_the_whole_run_as_data(app, database, fault):
    seeded(database)
    schema = _ident(HOSTILE_SCHEMA)
    statements = [f"CREATE SCHEMA {schema}"]
    for i, table in enumerate(HOSTILE_TABLES):
        name = f"{schema}.{_ident(table)}" if i % 2 == 0 else f"public.{_ident(table)}"
        statements += [
            f"CREATE TABLE {name} (id integer PRIMARY KEY, {HOSTILE_COLUMN} text)",
            f"INSERT INTO {name} SELECT g, E'tab\\there \\\\ back' || g FROM generate_series(1, {10 + i}) g",
        ]
    database.execute(";\n".join(statements))
    before = _state(database)
    app.apply(app.manifest("hostile", image="example-app:deletes-rows"))
    status = end_of_rollback(app, "hostile", fault, timeout=240)
    fault.saw(status)
    _intact(fault, database, before)
    assert status["phase"] == "RolledBack", status
    assert status["rowCounts"]["violations"], status["rowCounts"]


@on_pg15
@pytest.mark.fault("estimated-count backup (verify.rowCounts.mode: estimated), migration fails", expected="RolledBack")
def test_an_estimated_count_backup_is_restored(app, database, fault):
    seeded(database)
    before = _state(database)
    spec = {"verify": {"rowCounts": {"mode": "estimated"}}}
    app.apply(app.manifest("estimated", image="example-app:per-migration-tx", spec=spec))
    status = end_of_rollback(app, "estimated", fault, timeout=240)
    fault.saw(status)
    _intact(fault, database, before)
    assert status["phase"] == "RolledBack", status
    assert "estimated" in status["steps"]["restore"]["message"], status["steps"]["restore"]


OTHER_APP = """
CREATE SCHEMA billing;
CREATE TABLE billing.invoice (id integer PRIMARY KEY, amount numeric(12, 2) NOT NULL);
INSERT INTO billing.invoice SELECT g, g * 1.5 FROM generate_series(1, 50) g;
"""


@on_pg15
@pytest.mark.fault(
    "another application's schema in the same database, written by that application during the run",
    expected="RolledBack",
)
def test_another_applications_schema_stays_as_that_application_left_it(app, database, fault):
    seeded(database)
    database.execute(OTHER_APP)
    before = dbstate.capture(database)
    # How a run learns which schemas are the app's (README, Scope): the backup's schema list.
    fault.note("the run declares its schemas with spec.backup.schemas: [public] (README, Scope)")
    try:
        app.apply(app.manifest("other-app", image="example-app:deletes-rows", spec={"backup": {"schemas": ["public"]}}))
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"the apiserver refused the run: {' '.join(exc.stderr.split())[:200]}") from None
    faults.wait_for_backup(app, "other-app")
    # The other application keeps working: its rows after the backup are its own, not ours to discard.
    database.execute(
        "INSERT INTO billing.invoice SELECT g, g FROM generate_series(51, 60) g;"
        "UPDATE billing.invoice SET amount = amount + 1 WHERE id <= 5"
    )
    billing = dbstate.capture(database).rows["billing.invoice"]
    status = end_of_rollback(app, "other-app", fault, timeout=240)
    fault.saw(status)
    expected = dbstate.DatabaseState(schema=before.schema, rows={**before.rows, "billing.invoice": billing})
    fault.intact(dbstate.capture(database), expected, what="our schema as before, billing as its app left it")
    assert status["phase"] == "RolledBack", status


class _LeftoverSession:
    """A session marked as the run's migrate (its application_name), idle in a transaction holding a
    lock on ``task``: what a migrate pod cut off from the server without a goodbye leaves behind."""

    def __init__(self, database: Database, application_name: str) -> None:
        server = database.server
        env = {**server.env(), "PGAPPNAME": application_name}
        self.proc = subprocess.Popen(
            [str(server.tool("psql")), "-X", "-q", "-d", database.name],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write("BEGIN;\nLOCK TABLE task IN ACCESS SHARE MODE;\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@on_pg15
@pytest.mark.fault("the run's orphaned migrate session holds a lock when the restore starts", expected="RolledBack")
def test_an_orphaned_migrate_session_holding_a_lock_is_ended_by_the_restore(app, database, fault):
    seeded(database)
    before = _state(database)
    app.apply(app.manifest("orphan", image="example-app:deletes-rows"))
    dump = faults.wait_for_backup(app, "orphan")
    name = sessions.migrate_application_name(dump.rsplit("/", 1)[0] + "/")  # the run folder's marking
    leftover = _LeftoverSession(database, name)
    try:
        held = (
            f"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{name}'"
        )
        faults.wait_for("the leftover session to hold its lock", lambda: database.scalar(held) != "0", timeout=30)
        status = end_of_rollback(app, "orphan", fault, timeout=240)
        # psql still runs: its server session is gone because the restore ended it.
        gone = database.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'")
    finally:
        leftover.close()
    fault.saw(status)
    _intact(fault, database, before)
    assert status["phase"] == "RolledBack", status
    assert gone == "0", f"the leftover session {name} outlived the restore"
    fault.note("the restore ended the run's own session (same application_name); a foreign one is named, not ended")
