"""``restore --table`` (issue 13, finding 4): exactly the backup's rows, no user trigger firing.

Round 1 let the table's triggers fire during the data-only load: rows were rewritten and other
tables gained rows, and the step exited 0 because only counts were checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import checksums, location_for, make_sample, run_step, step_env

pytestmark = pytest.mark.testbed

TRIGGERS = """
CREATE TABLE trigger_log (what text);
CREATE FUNCTION rewrite_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.title := 'rewritten by a trigger'; RETURN NEW; END $$;
CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO trigger_log VALUES (TG_OP || ' ' || TG_TABLE_NAME); RETURN NULL; END $$;
CREATE TRIGGER rewrite BEFORE INSERT OR UPDATE ON task FOR EACH ROW EXECUTE FUNCTION rewrite_title();
CREATE TRIGGER log_rows AFTER INSERT ON task FOR EACH ROW EXECUTE FUNCTION log_it();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON audit.comment FOR EACH STATEMENT EXECUTE FUNCTION log_it();
CREATE TRIGGER replica_only AFTER INSERT ON task FOR EACH ROW EXECUTE FUNCTION log_it();
ALTER TABLE task ENABLE REPLICA TRIGGER replica_only;
CREATE TRIGGER switched_off AFTER INSERT ON task FOR EACH ROW EXECUTE FUNCTION log_it();
ALTER TABLE task DISABLE TRIGGER switched_off;
"""


def _trigger_states(database: Any) -> list[tuple[str, ...]]:
    return database.query("SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")


def test_a_table_restore_brings_back_exactly_the_backups_rows_and_fires_no_trigger(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    database.execute("ALTER TABLE task DISABLE TRIGGER USER")  # the sample's rows are loaded as they are
    database.execute(TRIGGERS)
    database.execute("ALTER TABLE task ENABLE TRIGGER rewrite; ALTER TABLE task ENABLE TRIGGER log_rows")
    states = _trigger_states(database)
    backed_up = checksums(database)
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    # the migration: every task row rewritten (same count), a comment deleted; its trigger log is the app's
    database.execute("UPDATE task SET done = NOT done; DELETE FROM audit.comment WHERE id % 2 = 0")
    migrated = checksums(database)
    assert migrated["public.task"] != backed_up["public.task"]

    code, result, _, stderr = run_step(
        [
            "restore",
            "--location",
            location_for(bucket),
            "--table",
            "task",
            "--table",
            "audit.comment",
            "--on-foreign-writes",
            "restore",
        ],
        env=env,
        tmp_path=tmp_path,
    )
    assert code == 0, stderr
    assert result is not None and "ordered-row digest" in result["message"]
    after = checksums(database)
    assert after["public.task"] == backed_up["public.task"]  # not rewritten by the BEFORE trigger
    assert after["audit.comment"] == backed_up["audit.comment"]
    assert after["public.trigger_log"] == migrated["public.trigger_log"]  # no trigger wrote anything
    assert after["public.project"] == migrated["public.project"]
    assert _trigger_states(database) == states  # enabled, replica-only and disabled triggers as they were
