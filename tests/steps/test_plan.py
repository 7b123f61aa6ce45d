"""The plan step: offline SQL for review, destructive statements marked, policies applied."""

from __future__ import annotations

import pytest

from tests.example.support import HEAD, app_dir, error_line, revision, run_cli, run_step

pytestmark = pytest.mark.one_major  # alike on every major: 15 only in make test


def test_plan_of_an_empty_database_lists_every_revision_and_writes_nothing(database, monkeypatch, capsys, tmp_path):
    run = run_step(monkeypatch, capsys, tmp_path, "plan", url=database.url, cwd=app_dir())
    assert run.code == 0, run.stderr
    assert run.data["fromRevision"] is None and run.data["toRevision"] == HEAD
    assert run.data["pending"] == ["0001", "0002", "0003", "0004"]
    assert run.data["destructive"] == [] and run.data["policy"] == "warn"
    assert run.data["statements"] >= 12
    assert "CREATE TABLE task" in run.stdout and "-- Running upgrade 0003 -> 0004" in run.stdout
    assert revision(database) is None  # offline: nothing executed


def test_plan_reads_the_current_revision_from_the_database(database, monkeypatch, capsys, tmp_path):
    assert (
        run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", "0002", url=database.url, cwd=app_dir()).code
        == 0
    )
    run = run_step(
        monkeypatch, capsys, tmp_path, "plan", "--output", str(tmp_path / "plan.sql"), url=database.url, cwd=app_dir()
    )
    assert run.code == 0
    assert (run.data["fromRevision"], run.data["pending"]) == ("0002", ["0003", "0004"])
    sql = (tmp_path / "plan.sql").read_text()
    assert "ADD COLUMN details JSONB" in sql and "ADD COLUMN priority" not in sql
    assert "CREATE TABLE" not in run.stdout


def test_plan_from_a_given_revision_needs_no_database(monkeypatch, capsys, tmp_path):
    run = run_step(monkeypatch, capsys, tmp_path, "plan", "--from", "0003", url=None, cwd=app_dir())
    assert run.code == 0, run.stderr
    assert run.data["pending"] == ["0004"] and run.data["statements"] == 1
    assert "CREATE INDEX ix_task_status_priority ON task (status, priority)" in run.stdout


def test_destructive_statements_are_marked_and_listed_under_warn(monkeypatch, capsys, tmp_path):
    run = run_step(monkeypatch, capsys, tmp_path, "plan", "--from", HEAD, url=None, cwd=app_dir("destructive"))
    assert run.code == 0
    kinds = [d["kind"] for d in run.data["destructive"]]
    assert kinds == ["drop_column", "drop_index", "alter_column_type", "delete_without_where", "rename"]
    assert all(d["revision"] == "0005" and len(d["statement"]) <= 160 for d in run.data["destructive"])
    assert "-- alembic-operator: DESTRUCTIVE (drop_column)\nALTER TABLE project DROP COLUMN description;" in run.stdout
    assert "5 destructive" in run.message


def test_the_block_policy_refuses_a_destructive_plan_in_one_line(tmp_path):
    run = run_cli("plan", "--from", HEAD, "--policy", "block", url=None, cwd=app_dir("destructive"), tmp_path=tmp_path)
    assert run.code == 23
    line = error_line(run.stderr)
    assert line.startswith(
        "alembic-operator plan: DestructiveChange: 5 destructive statements in the plan "
        "(policy block): 0005 drop_column: ALTER TABLE project DROP COLUMN description"
    )
    assert run.result["data"]["destructiveCount"] == 5
    assert "Traceback" not in run.stderr


def test_the_block_policy_passes_a_safe_plan(monkeypatch, capsys, tmp_path):
    run = run_step(
        monkeypatch, capsys, tmp_path, "plan", "--from", "base", "--policy", "block", url=None, cwd=app_dir()
    )
    assert run.code == 0 and run.data["destructive"] == []


def test_plan_at_the_target_is_empty(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    run = run_step(monkeypatch, capsys, tmp_path, "plan", url=database.url, cwd=app_dir())
    assert run.code == 0 and run.data["statements"] == 0 and run.data["pending"] == []
    assert "nothing to plan" in run.message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--from", "abc123"), "--from 'abc123' is not a revision of these scripts; heads are 0004"),
        (("--from", "base", "--target", "nope"), "unknown target revision 'nope'"),
    ],
)
def test_plan_refuses_unknown_revisions(args, expected, tmp_path):
    run = run_cli("plan", *args, url=None, cwd=app_dir(), tmp_path=tmp_path)
    assert run.code == 20 and expected in error_line(run.stderr)


def test_plan_refuses_a_database_at_an_unknown_revision(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    database.execute("UPDATE alembic_version SET version_num = 'feedbeef'")
    run = run_step(monkeypatch, capsys, tmp_path, "plan", url=database.url, cwd=app_dir())
    assert run.code == 20
    assert run.message == "database is at revision feedbeef which this image's scripts do not contain; heads are 0004"


def test_plan_refuses_multiple_heads(tmp_path):
    run = run_cli("plan", "--from", "0004", url=None, cwd=app_dir("multiple-heads"), tmp_path=tmp_path)
    assert run.code == 20 and "multiple heads (0005a, 0005b)" in error_line(run.stderr)


def test_plan_uploads_to_s3(s3, bucket, monkeypatch, capsys, tmp_path):
    env = {**s3.env(), "S3_ENDPOINT": s3.endpoint, "S3_REGION": s3.region, "S3_FORCE_PATH_STYLE": "true"}
    run = run_step(
        monkeypatch,
        capsys,
        tmp_path,
        "plan",
        "--from",
        HEAD,
        "--location",
        f"s3://{bucket}/shop/run-7/",
        url=None,
        cwd=app_dir("destructive"),
        env=env,
    )
    assert run.code == 0, run.stderr
    assert run.data["location"] == f"s3://{bucket}/shop/run-7/plan.sql"
    body = s3.client().get_object(Bucket=bucket, Key="shop/run-7/plan.sql")["Body"].read().decode()
    assert "-- alembic-operator: DESTRUCTIVE (rename)" in body


def test_plan_without_a_database_or_a_starting_revision_says_what_to_pass(tmp_path):
    run = run_cli("plan", url=None, cwd=app_dir(), tmp_path=tmp_path)
    assert run.code == 2
    assert error_line(run.stderr) == (
        "alembic-operator plan: InvalidInput: DATABASE_URL is not set; "
        "set it or pass --from REV to plan without a database"
    )


def test_a_revision_that_cannot_render_offline_is_reported_but_does_not_stop_a_warn_plan(monkeypatch, capsys, tmp_path):
    run = run_step(monkeypatch, capsys, tmp_path, "plan", "--from", HEAD, url=None, cwd=app_dir("raises"))
    assert run.code == 0, run.stderr
    assert run.data["rendered"] is False
    assert "cannot be rendered as SQL" in run.message and "not checked" in run.message


def test_a_revision_that_cannot_render_offline_fails_a_block_plan(tmp_path):
    run = run_cli("plan", "--from", HEAD, "--policy", "block", url=None, cwd=app_dir("raises"), tmp_path=tmp_path)
    assert run.code == 20
    assert "policy block cannot be checked" in error_line(run.stderr)


def test_a_block_plan_told_to_report_unrendered_revisions_names_them_and_exits_zero(monkeypatch, capsys, tmp_path):
    # what the operator runs under block: it then waits for a person's approval instead of failing
    argv = ("plan", "--from", HEAD, "--policy", "block", "--unrendered", "report")
    run = run_step(monkeypatch, capsys, tmp_path, *argv, url=None, cwd=app_dir("raises"))
    assert run.code == 0, run.stderr
    assert run.data["rendered"] is False and run.data["policy"] == "block"
    assert [u["revision"] for u in run.data["unrendered"]] == ["0005"]
    assert "0005 (" in run.message and "not checked" in run.message
