"""The verify step: the row-count policy against the backup manifest, and the revision check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors

from . import (
    REVISION,
    SAMPLE_ROWS,
    assert_parses_into_its_model,
    location_for,
    make_sample,
    read_json,
    run_main,
    run_step,
    step_env,
)

pytestmark = pytest.mark.testbed

VERIFY_KEY = "shop/migrations/run-1/verify.json"


@pytest.fixture
def backed_up(database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sample database, backed up to ``location_for(bucket)``."""
    make_sample(database)
    code, result = run_main(
        ["backup", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    return database


def _verify(database: Any, s3: Any, bucket: str, tmp_path: Path, *flags: str) -> tuple[int, Any, str]:
    code, result, _, stderr = run_step(
        ["verify", *flags],
        env=step_env(database_url=database.url, s3=s3, location=location_for(bucket)),
        tmp_path=tmp_path,
    )
    return code, result, stderr


def test_unchanged_database_passes_and_verify_json_has_before_and_after(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--expect-revision", REVISION)
    assert code == 0, stderr
    assert result["data"]["tablesChecked"] == 4 and result["data"]["violations"] == []
    assert result["data"]["revision"] == REVISION
    typed = assert_parses_into_its_model(json.dumps(result)).data
    assert typed.rows_before == typed.rows_after == sum(SAMPLE_ROWS.values())  # status.rowCounts
    report = read_json(s3.client(), bucket, VERIFY_KEY)
    assert report["tables"]["public.task"] == {"before": 3000, "after": 3000, "status": "ok"}


def test_rows_deleted_by_a_migration_are_a_violation_naming_the_table(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up.execute("DELETE FROM audit.comment; DELETE FROM task WHERE id > 2880; DROP TABLE audit.comment")
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path)
    assert code == errors.RowCountViolation.exit_code
    assert stderr.strip() == (
        "alembic-operator verify: RowCountViolation: audit.comment disappeared; task lost 120 rows (3000 → 2880)"
    )
    assert result["reason"] == "RowCountViolation" and result["changedDatabase"] is True
    assert result["data"]["violations"] == [
        {"table": "audit.comment", "before": 1500, "after": None},
        {"table": "public.task", "before": 3000, "after": 2880},
    ]
    typed = assert_parses_into_its_model(json.dumps(result)).data
    assert (typed.rows_before, typed.rows_after) == (sum(SAMPLE_ROWS.values()), sum(SAMPLE_ROWS.values()) - 1620)
    report = read_json(s3.client(), bucket, VERIFY_KEY)
    assert report["tables"]["public.task"]["status"] == "lost"
    assert report["tables"]["audit.comment"] == {"before": 1500, "after": None, "status": "disappeared"}


def test_allow_decrease_and_exclude_forgive_named_tables(backed_up: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    backed_up.execute("DELETE FROM task WHERE id > 2000; DELETE FROM audit.comment WHERE id % 2 = 0")
    code, _, _ = _verify(backed_up, s3, bucket, tmp_path, "--allow-decrease", "task")
    assert code == errors.RowCountViolation.exit_code  # comment still lost rows
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--allow-decrease", "task,audit.comment")
    assert code == 0, stderr
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--allow-decrease", "task", "--exclude", "audit.*")
    assert code == 0, stderr
    assert result["data"]["tablesChecked"] == 3
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--include", "project")
    assert code == 0 and result["data"]["tablesChecked"] == 1


def test_new_tables_and_added_rows_are_fine(backed_up: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    backed_up.execute(
        "CREATE TABLE label (id int); INSERT INTO label VALUES (1);INSERT INTO project (name) VALUES ('more')"
    )
    code, _result, stderr = _verify(backed_up, s3, bucket, tmp_path)
    assert code == 0, stderr
    assert read_json(s3.client(), bucket, VERIFY_KEY)["newTables"] == {"public.label": 1}


def test_wrong_revision_is_a_revision_mismatch(backed_up: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    code, _result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--expect-revision", "ffff0000")
    assert code == errors.RevisionMismatch.exit_code
    assert f"database is at revision {REVISION}, expected ffff0000" in stderr


def test_estimated_mode_flags_a_dropped_table_and_off_mode_checks_nothing(
    backed_up: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--mode", "estimated")
    assert code == 0, stderr
    backed_up.execute("DROP TABLE audit.comment")
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--mode", "estimated")
    assert code == errors.RowCountViolation.exit_code and "audit.comment disappeared" in stderr
    code, result, stderr = _verify(backed_up, s3, bucket, tmp_path, "--mode", "off")
    assert code == 0 and result["data"]["tablesChecked"] == 0


def test_verify_never_changes_the_database(backed_up: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    from . import checksums

    backed_up.execute("DELETE FROM task WHERE id > 2000")
    before = checksums(backed_up)
    _verify(backed_up, s3, bucket, tmp_path)
    assert checksums(backed_up) == before
    json.dumps(before)
