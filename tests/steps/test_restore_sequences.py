"""Sequences after a restore never hand out an id already handed out (issue 13, finding 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import location_for, make_sample, run_step, step_env

pytestmark = pytest.mark.testbed


def test_a_restore_keeps_each_sequence_at_the_larger_of_its_two_values(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    # written since the backup (and discarded by the restore): ids 3001..3100 went to someone
    database.execute("INSERT INTO task (project_id, title) SELECT 1, 'after ' || g FROM generate_series(1, 100) g")
    handed_out = int(database.scalar("SELECT max(id) FROM task"))
    database.execute("SELECT setval('project_id_seq', 1, false)")  # a migration that lowered one: dump wins

    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == 0, stderr
    assert database.scalar("SELECT count(*) FROM task") == "3000"
    assert int(database.scalar("SELECT nextval('task_id_seq')")) == handed_out + 1
    assert database.scalar("SELECT last_value FROM project_id_seq") == "40"  # the dump's, the larger
    assert result is not None
    kept = {k["sequence"]: k["value"] for k in result["data"]["sequencesKept"]}
    assert kept.get("public.task_id_seq") == handed_out and "public.project_id_seq" not in kept
    assert "no id is handed out twice" in result["message"]
