"""The destructive-statement classifier (pure): what plan marks and --policy block refuses."""

from __future__ import annotations

import pytest

from alembic_operator.job.migrations import destructive


@pytest.mark.parametrize(
    ("sql", "kinds"),
    [
        ("DROP TABLE task", ["drop_table"]),
        ("drop table if exists public.task cascade", ["drop_table"]),
        ("DROP SCHEMA billing CASCADE", ["drop_schema"]),
        ("DROP INDEX ix_task_status", ["drop_index"]),
        ("DROP INDEX CONCURRENTLY IF EXISTS ix", ["drop_index"]),
        ("DROP SEQUENCE task_id_seq", ["drop_sequence"]),
        ("DROP TYPE mood", ["drop_type"]),
        ("DROP VIEW v", ["drop_view"]),
        ("DROP MATERIALIZED VIEW mv", ["drop_view"]),
        ("ALTER TABLE task DROP COLUMN description", ["drop_column"]),
        ("ALTER TABLE task DROP description", ["drop_column"]),
        ("ALTER TABLE IF EXISTS ONLY public.task DROP COLUMN IF EXISTS a", ["drop_column"]),
        ("ALTER TABLE task DROP COLUMN a, DROP COLUMN b", ["drop_column", "drop_column"]),
        ("ALTER TABLE task ADD COLUMN x int, DROP COLUMN y", ["drop_column"]),
        # issue 15: a dropped constraint (pk, fk, check, unique) lets bad data in, like a dropped index slows it
        ("ALTER TABLE task DROP CONSTRAINT task_project_id_fkey", ["drop_constraint"]),
        ("ALTER TABLE task DROP CONSTRAINT task_pkey, DROP CONSTRAINT ck_done", ["drop_constraint", "drop_constraint"]),
        # widening type changes lose nothing: not flagged
        ("ALTER TABLE task ALTER COLUMN title TYPE TEXT", []),
        ("ALTER TABLE task ALTER COLUMN title TYPE VARCHAR", []),
        ("ALTER TABLE task ALTER COLUMN id TYPE BIGINT", []),
        ("ALTER TABLE task ALTER id SET DATA TYPE int8", []),
        ("ALTER TABLE task ALTER COLUMN ratio TYPE double precision", []),
        # narrowing, sized (the old size is unknown offline) or converted: flagged
        ("ALTER TABLE task ALTER COLUMN id TYPE INTEGER", ["alter_column_type"]),
        ("ALTER TABLE task ALTER COLUMN title TYPE VARCHAR(200)", ["alter_column_type"]),
        ("ALTER TABLE task ALTER COLUMN amount TYPE NUMERIC(10, 2)", ["alter_column_type"]),
        ("ALTER TABLE task ALTER COLUMN n TYPE BIGINT USING n::bigint", ["alter_column_type"]),
        ("ALTER TABLE task ALTER COLUMN priority TYPE VARCHAR(10)", ["alter_column_type"]),
        ("ALTER TABLE task ALTER priority SET DATA TYPE text USING priority::text", ["alter_column_type"]),
        ("ALTER TABLE task ALTER COLUMN type SET DEFAULT 'x'", []),
        ("ALTER TABLE task ALTER COLUMN priority SET NOT NULL", []),
        ("ALTER TABLE task ALTER COLUMN priority DROP DEFAULT", []),
        ("ALTER TABLE task ALTER COLUMN priority DROP NOT NULL", []),
        ("ALTER TABLE task RENAME TO todo", ["rename"]),
        ("ALTER TABLE task RENAME COLUMN title TO name", ["rename"]),
        ("ALTER TABLE task RENAME title TO name", ["rename"]),
        ("ALTER TABLE task RENAME CONSTRAINT a TO b", []),
        ("ALTER INDEX ix_a RENAME TO ix_b", ["rename"]),
        ("ALTER SEQUENCE s RENAME TO t", ["rename"]),
        ("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", ["rename"]),
        ("TRUNCATE task", ["truncate"]),
        ("truncate table task, comment restart identity", ["truncate"]),
        ("DELETE FROM comment", ["delete_without_where"]),
        ("DELETE FROM comment WHERE task_id = 1", []),
        ("DELETE FROM comment USING task WHERE comment.task_id = task.id", []),
        ("UPDATE task SET priority = 'medium'", ["update_without_where"]),
        ("UPDATE task SET priority = 'medium' WHERE priority IS NULL", []),
        ("UPDATE task SET title = 'where is it'", ["update_without_where"]),
        ("UPDATE task SET title = $$ WHERE $$", ["update_without_where"]),
        ("UPDATE task SET title = $x$ a ' WHERE $x$", ["update_without_where"]),
        ("UPDATE task SET title = 'it''s WHERE'", ["update_without_where"]),
        ("UPDATE task SET p = (SELECT max(p) FROM t WHERE t.id = 1)", ["update_without_where"]),
        ("UPDATE task SET p = 1 -- WHERE id = 1", ["update_without_where"]),
        ("UPDATE task SET p = 1 /* WHERE id = 1 */", ["update_without_where"]),
        ('UPDATE "where" SET p = 1', ["update_without_where"]),
        ("WITH old AS (SELECT id FROM task WHERE status = 'done') DELETE FROM comment", ["delete_without_where"]),
        ("WITH old AS (SELECT 1) DELETE FROM comment WHERE task_id IN (SELECT id FROM old)", []),
        ("CREATE TABLE task (id int)", []),
        ("CREATE INDEX ix ON task (status)", []),
        ("INSERT INTO task SELECT * FROM old", []),
        ("ALTER TABLE task ADD COLUMN details JSONB DEFAULT '{}'::jsonb NOT NULL", []),
        ("-- DROP TABLE task\nSELECT 1", []),
        ("COMMENT ON TABLE task IS 'DROP TABLE task'", []),
        ("UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001'", []),
        ("DELETE FROM alembic_version", []),
        ("DROP TABLE alembic_version", []),
        ("", []),
    ],
)
def test_each_statement_is_classified(sql: str, kinds: list[str]):
    assert destructive.classify(sql) == kinds


def test_statements_split_on_top_level_semicolons_only():
    sql = "SELECT 1; SELECT 'a;b'; -- x; y\nSELECT $$;$$; /* ; */ SELECT \"a;\"; ;"
    assert destructive.split_statements(sql) == [
        "SELECT 1",
        "SELECT 'a;b'",
        "-- x; y\nSELECT $$;$$",
        '/* ; */ SELECT "a;"',
    ]


OFFLINE = """BEGIN;

CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);

-- Running upgrade  -> 0001

CREATE TABLE task (id int);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE task DROP COLUMN id;

DELETE FROM task;

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

COMMIT;
"""


def test_findings_name_the_revision_that_emits_them():
    findings = destructive.scan(OFFLINE)
    assert [f.as_dict() for f in findings] == [
        {"revision": "0002", "kind": "drop_column", "statement": "ALTER TABLE task DROP COLUMN id"},
        {"revision": "0002", "kind": "delete_without_where", "statement": "DELETE FROM task"},
    ]


def test_annotate_puts_a_mark_above_each_destructive_statement_and_changes_nothing_else():
    marked = destructive.annotate(OFFLINE)
    assert (
        "-- Running upgrade 0001 -> 0002\n\n-- alembic-operator: DESTRUCTIVE (drop_column)\nALTER TABLE task DROP"
        in marked
    )
    assert "-- alembic-operator: DESTRUCTIVE (delete_without_where)\nDELETE FROM task;" in marked
    stripped = "\n".join(ln for ln in marked.splitlines(keepends=False) if not ln.startswith(destructive.MARK))
    assert stripped == OFFLINE.rstrip("\n")
    assert destructive.annotate("") == ""


def test_long_statements_are_shortened_to_one_line_of_160_characters():
    statement = "DELETE FROM task\n   " + " ".join(["x"] * 300)
    short = destructive.shorten(statement)
    assert len(short) == 160 and short.endswith("...") and "\n" not in short
    assert destructive.shorten("DROP   TABLE\n t") == "DROP TABLE t"


def test_a_script_without_revision_markers_has_no_revision():
    assert destructive.scan("DROP TABLE t;")[0].revision is None


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("DO $$ BEGIN DELETE FROM task; END $$", "do_block"),
        ("DO LANGUAGE plpgsql $body$ BEGIN DROP TABLE x; END $body$", "do_block"),
        ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", "function"),
        ("CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM task $$", "function"),
        ("CALL archive_tasks()", "call"),
        ("CREATE TABLE f (id int)", None),
        ("SELECT 'DO $$ x $$'", None),
    ],
)
def test_server_side_code_is_listed_as_unchecked(statement, kind):
    assert destructive.unchecked(statement) == kind
    assert destructive.classify(statement) == []
