"""Verify allows the data changes the revisions declare, and names every allowance it used (issue 15).

A real PostgreSQL and S3: the sample database is backed up, then changed the
way an app's own history moves data (a table dropped, one emptied, one
"renamed" by copying into a new table, so with another oid). Declared as
``--declared-allowance`` (what the operator passes from the plan's
``declaredAllowances``) they pass, and the message and result say which table
vanished, shrank or moved and which revision (or the run's spec) allowed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors

from . import assert_parses_into_its_model, read_json, test_verify

pytestmark = [pytest.mark.testbed, pytest.mark.one_major]  # alike on every major: 15 only in make test

VERIFY_KEY = test_verify.VERIFY_KEY
#: What an app's history does to the sample: comment dropped, task moved into todo by copy, projects emptied.
MOVES = """
DROP TABLE audit.comment;
CREATE TABLE todo AS SELECT * FROM task;
DROP TABLE task;
DELETE FROM project WHERE id > 10;
"""
DECLARED = [
    "--declared-allowance",
    "0006:drop:comment",
    "--declared-allowance",
    "0007:rename:task=todo",
    "--declared-allowance",
    "0008:shrink:project",
]


#: The sample database backed up to ``location_for(bucket)``, and verify run against it: as in test_verify.
backed_up = test_verify.backed_up
_verify = test_verify._verify


def test_declared_drops_renames_and_shrinks_pass_and_the_message_names_each_with_its_revision(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up.execute(MOVES)
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, *DECLARED)
    assert code == 0, stderr
    assert result["message"] == (
        "4 tables checked, no rows lost; allowed: "
        "task renamed to todo (3000 → 3000 rows; declared by revision 0007); "
        "audit.comment dropped (1500 rows; declared by revision 0006); "
        "project shrank 40 → 10 rows (declared by revision 0008)"
    )
    used = assert_parses_into_its_model(json.dumps(result)).data.allowances_used
    assert [(u.table, u.change, u.before, u.after, u.to, u.revision) for u in used] == [
        ("public.task", "renamed", 3000, 3000, "public.todo", "0007"),
        ("audit.comment", "dropped", 1500, None, None, "0006"),
        ("public.project", "shrank", 40, 10, None, "0008"),
    ]
    report = read_json(s3.client(), bucket, VERIFY_KEY)
    assert [u["table"] for u in report["allowancesUsed"]] == ["public.task", "audit.comment", "public.project"]
    assert report["tables"]["audit.comment"]["status"] == "allowed"


def test_without_the_declarations_the_same_changes_fail_naming_every_table(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up.execute(MOVES)
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path)
    assert code == errors.RowCountViolation.exit_code, stderr
    assert {v["table"] for v in result["data"]["violations"]} == {"audit.comment", "public.task", "public.project"}


def test_a_declaration_covers_only_its_own_kind_and_a_rename_that_lost_rows_fails(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # comment only shrank though a drop was declared; todo got fewer rows than task had
    backed_up.execute(
        "DELETE FROM audit.comment WHERE id % 2 = 0; CREATE TABLE todo AS SELECT * FROM task WHERE id <= 2000;"
        "DELETE FROM audit.comment WHERE task_id > 2000; DROP TABLE task CASCADE"
    )
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, *DECLARED)
    assert code == errors.RowCountViolation.exit_code, stderr
    assert "audit.comment lost" in result["message"]
    assert "task lost 1000 rows (3000 → 2000)" in result["message"]


def test_the_runs_own_allow_decrease_is_named_as_the_spec_s(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up.execute("DELETE FROM audit.comment WHERE id % 2 = 0")
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--allow-decrease", "audit.*")
    assert code == 0, stderr
    assert result["message"] == (
        "4 tables checked, no rows lost; allowed: audit.comment shrank 1500 → 750 rows "
        "(allowed by the run's allowDecrease audit.*)"
    )
