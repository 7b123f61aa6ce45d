"""verify ``--mode content`` (spec ``verify.rowCounts.mode: content``) and renames (issue 13, finding 6).

A migration that deletes N rows and inserts N others, or updates every row, keeps every count:
``exact`` passes it, ``content`` fails it naming the tables and how many backed-up rows changed.
A table the migration renamed and moved to another schema is reported as such (by table oid),
checked under its new name, not as a table that disappeared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors

from . import location_for, make_sample, read_json, run_step, step_env

pytestmark = [pytest.mark.testbed, pytest.mark.one_major]  # alike on every major: 15 only in make test

SAME_COUNTS = """
DELETE FROM audit.comment WHERE task_id <= 100;
DELETE FROM task WHERE id <= 100;
INSERT INTO task (project_id, title) SELECT 1, 'replacement ' || g FROM generate_series(1, 100) g;
UPDATE project SET name = name || ' (renamed by the migration)';
ALTER TABLE audit.comment RENAME TO remark;
ALTER TABLE audit.remark SET SCHEMA public;
"""


def test_content_mode_fails_rows_replaced_or_rewritten_that_exact_counts_pass(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    loc = location_for(bucket)
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(["backup", "--location", loc], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    comments = int(database.scalar("SELECT count(*) FROM audit.comment WHERE task_id > 100"))
    database.execute(SAME_COUNTS)
    database.execute(f"INSERT INTO remark (task_id, body) SELECT 200, 'new' FROM generate_series(1, 1500 - {comments})")

    code, result, _, stderr = run_step(["verify", "--location", loc, "--mode", "exact"], env=env, tmp_path=tmp_path)
    assert code == 0 and result is not None, stderr
    assert "audit.comment renamed to public.remark" in result["message"]
    assert result["data"]["renamed"] == {"audit.comment": "public.remark"}

    code, result, _, stderr = run_step(["verify", "--location", loc, "--mode", "content"], env=env, tmp_path=tmp_path)
    assert code == errors.RowCountViolation.exit_code and result is not None, stderr
    changed = {v["table"]: v["changedRows"] for v in result["data"]["violations"]}
    assert changed["public.task"] == 100 and changed["public.project"] == 40
    assert changed["audit.comment"] == 1500 - comments  # the comments deleted with their tasks
    assert "task: 100 of the backup's 3000 rows changed or gone (content)" in result["message"]
    report = read_json(s3.client(), bucket, "shop/migrations/run-1/verify.json")
    assert report["tables"]["public.task"]["status"] == "changed"
    assert report["tables"]["public.alembic_version"]["status"] == "ok"


def test_content_mode_passes_a_migration_that_only_adds(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    """New rows and new columns leave every backed-up row as it was (compared on the backup's columns)."""
    make_sample(database)
    loc = location_for(bucket)
    env = step_env(database_url=database.url, s3=s3)
    assert run_step(["backup", "--location", loc], env=env, tmp_path=tmp_path)[0] == 0
    database.execute(
        "ALTER TABLE task ADD COLUMN priority int NOT NULL DEFAULT 3;"
        "INSERT INTO task (project_id, title) SELECT 2, 'more ' || g FROM generate_series(1, 10) g"
    )
    code, result, _, stderr = run_step(["verify", "--location", loc, "--mode", "content"], env=env, tmp_path=tmp_path)
    assert code == 0 and result is not None, stderr
    assert "every backed-up row unchanged" in result["message"]
