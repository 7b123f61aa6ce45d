"""The drift step against real PostgreSQL 15 and 18: the example app's own env.py and models compared with
the database the way ``alembic check`` does — reported (warn) or failing the step (fail).

Drift runs as the console script, the way a Job pod runs it: run in-process (``cli.main``), a second
test in the same interpreter failed with "I/O operation on closed file" (some stream of the first test's
capture outlives it; not chased further).
"""

from __future__ import annotations

from tests.example.support import app_dir, run_cli, run_step


def test_drift_reports_nothing_at_head_then_names_a_column_the_models_lack_and_fails_on_policy_fail(
    database, monkeypatch, capsys, tmp_path
):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    clean = run_cli("drift", url=database.url, cwd=app_dir(), tmp_path=tmp_path)
    assert clean.code == 0, clean.stderr
    assert clean.data["differences"] == [] and clean.message == "the models match the database"

    database.execute("ALTER TABLE task ADD COLUMN added_by_hand integer")
    warned = run_cli("drift", url=database.url, cwd=app_dir(), tmp_path=tmp_path)
    assert warned.code == 0, warned.stderr
    assert warned.data["differences"] == ["remove_column task.added_by_hand"]
    assert warned.message.startswith("1 difference(s) between the models and the database")

    failed = run_cli("drift", "--policy", "fail", url=database.url, cwd=app_dir(), tmp_path=tmp_path)
    assert failed.code == 32 and failed.result["reason"] == "SchemaDrift"
    assert "remove_column task.added_by_hand" in failed.message

    ignored = run_cli("drift", "--policy", "ignore", url=database.url, cwd=app_dir(), tmp_path=tmp_path)
    assert ignored.code == 0 and ignored.data["policy"] == "ignore"
