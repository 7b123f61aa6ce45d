"""The plan does not flag a varchar that only grows, and still flags one that shrinks (issue 15).

The offline SQL says only the new type; the revision's own
``op.alter_column(..., existing_type=sa.VARCHAR(length=n))`` (what autogenerate
writes) says the old one, and the plan step writes it above the statement.
A scenario of the example app: its revisions 0001-0004 plus one revision of
type changes, planned from 0004 without a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.example.support import EXAMPLE, HEAD, app_dir, run_step

REVISION = '''"""type changes

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("task", "title", existing_type=sa.VARCHAR(length=500), type_=sa.String(length=1000))
    op.alter_column("task", "status", existing_type=sa.VARCHAR(length=50), type_=sa.String(length=10))
    op.alter_column("project", "name", type_=sa.String(length=300))
    op.create_table("label", sa.Column("name", sa.String(length=20)))
    op.alter_column("label", "name", type_=sa.String(length=40))


def downgrade():
    pass
'''


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """The example app's scripts plus revision 0005 above, with its own alembic.ini."""
    app = tmp_path / "app"
    (app / "versions").mkdir(parents=True)
    (app / "versions" / "0005_types.py").write_text(REVISION)
    (app / "alembic.ini").write_text(
        "[alembic]\n"
        f"script_location = {EXAMPLE / 'migrations'}\n"
        f"prepend_sys_path = {EXAMPLE}\n"
        "path_separator = os\n"
        f"version_locations = {EXAMPLE / 'migrations' / 'versions'}{':'}{app / 'versions'}\n"
    )
    return app


def test_a_growing_varchar_is_not_destructive_a_shrinking_one_and_an_unknown_old_length_are(
    scenario: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert HEAD == "0004"
    run = run_step(monkeypatch, capsys, tmp_path, "plan", "--from", "0004", url=None, cwd=scenario)
    assert run.code == 0, run.stderr
    flagged = [(d["revision"], d["kind"], d["statement"]) for d in run.data["destructive"]]
    assert flagged == [
        ("0005", "alter_column_type", "ALTER TABLE task ALTER COLUMN status TYPE VARCHAR(10)"),
        ("0005", "alter_column_type", "ALTER TABLE project ALTER COLUMN name TYPE VARCHAR(300)"),
        ("0005", "alter_column_type", "ALTER TABLE label ALTER COLUMN name TYPE VARCHAR(40)"),
    ]
    # the plan a reviewer reads says what each column was
    assert "-- alembic-operator: existing type of task.title: VARCHAR(500)" in run.stdout
    assert "-- alembic-operator: existing type of task.status: VARCHAR(50)" in run.stdout
    assert "ALTER TABLE task ALTER COLUMN title TYPE VARCHAR(1000);" in run.stdout


def test_with_a_database_the_catalog_names_the_old_length_the_revision_does_not(
    database: Any, scenario: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    migrated = run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", HEAD, url=database.url, cwd=app_dir())
    assert migrated.code == 0, migrated.stderr
    run = run_step(monkeypatch, capsys, tmp_path, "plan", url=database.url, cwd=scenario)
    assert run.code == 0, run.stderr
    assert run.data["fromRevision"] == HEAD
    flagged = [d["statement"] for d in run.data["destructive"]]
    # project.name is varchar(200) in the database: 300 widens; label is created by the plan itself, so the
    # catalog cannot speak for it and its change stays flagged, as does the shrinking status
    assert flagged == [
        "ALTER TABLE task ALTER COLUMN status TYPE VARCHAR(10)",
        "ALTER TABLE label ALTER COLUMN name TYPE VARCHAR(40)",
    ]
    assert "-- alembic-operator: existing type of project.name: character varying(200)" in run.stdout
