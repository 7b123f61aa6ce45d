"""Type changes that only widen are not destructive; varchar(n) → a larger n widens when the old type is known."""

from __future__ import annotations

import pytest

from alembic_operator.job.migrations import catalog_types, destructive, widening


@pytest.mark.parametrize(
    ("new", "old", "widens"),
    [
        ("VARCHAR(200)", "VARCHAR(100)", True),
        ("VARCHAR(100)", "VARCHAR(100)", True),
        ("VARCHAR(50)", "VARCHAR(100)", False),
        ("character varying(300)", "VARCHAR(200)", True),
        ("VARCHAR(200)", "character varying(20)", True),
        ("VARCHAR(200)", None, False),  # old length unknown: may truncate
        ("VARCHAR(200)", "TEXT", False),
        ("VARCHAR(200)", "CHAR(10)", False),  # not read: flagged
        ("TEXT", None, True),
        ("VARCHAR", "VARCHAR(10)", True),
        ("INTEGER", "SMALLINT", True),
        ("INTEGER", "BIGINT", False),
        ("INTEGER", None, False),
        ("BIGINT", "INTEGER", True),
        ("BIGINT", None, True),
        ("BIGINT", "NUMERIC(10, 2)", False),  # the fraction goes
        ("NUMERIC(12, 2)", "NUMERIC(10, 2)", True),
        ("NUMERIC(12, 4)", "NUMERIC(10, 2)", True),
        ("NUMERIC(10, 4)", "NUMERIC(10, 2)", False),  # two integer digits fewer
        ("NUMERIC(12, 1)", "NUMERIC(10, 2)", False),  # a fraction digit fewer
        ("VARCHAR(200) USING title::varchar(200)", "VARCHAR(100)", False),
        ('VARCHAR(200) COLLATE "C"', "VARCHAR(100)", False),
    ],
)
def test_widens(new, old, widens):
    assert widening.widens(new, old) is widens


def alter(new_type: str, *, was: str | None = None, column: str = "task.title") -> str:
    """An ALTER COLUMN TYPE statement as the plan holds it, with the hint the revision's existing_type gives."""
    hint = widening.hint(column=column, existing_type=was) + "\n\n" if was else ""
    return f"{hint}ALTER TABLE task ALTER COLUMN {column.split('.')[-1]} TYPE {new_type}"


def test_a_varchar_that_grows_is_not_flagged_when_the_revision_says_its_old_length():
    assert destructive.classify(alter("VARCHAR(1000)", was="VARCHAR(500)")) == []
    assert destructive.classify(alter("VARCHAR(1000)")) == ["alter_column_type"]


def test_a_varchar_that_shrinks_is_flagged_whatever_the_revision_says():
    assert destructive.classify(alter("VARCHAR(10)", was="VARCHAR(50)")) == ["alter_column_type"]


def test_the_hint_of_a_statement_with_several_type_changes_is_not_trusted():
    both = widening.hint(column="task.a", existing_type="VARCHAR(5)") + (
        "\nALTER TABLE task ALTER COLUMN a TYPE VARCHAR(10), ALTER COLUMN b TYPE VARCHAR(10)"
    )
    assert destructive.classify(both) == ["alter_column_type", "alter_column_type"]


def test_a_scanned_plan_keeps_the_hint_with_its_own_statement_only():
    sql = (
        "-- Running upgrade 0004 -> 0005\n\n"
        + widening.hint(column="task.title", existing_type="VARCHAR(500)")
        + "\n\nALTER TABLE task ALTER COLUMN title TYPE VARCHAR(1000);\n\n"
        + "ALTER TABLE task ALTER COLUMN status TYPE VARCHAR(1000);\n\n"
    )
    findings = destructive.scan(sql)
    assert [(f.revision, f.kind, f.statement) for f in findings] == [
        ("0005", "alter_column_type", "ALTER TABLE task ALTER COLUMN status TYPE VARCHAR(1000)")
    ]
    assert destructive.annotate(sql).count(destructive.MARK) == 1


def test_the_hint_survives_odd_spacing_and_is_read_back():
    assert widening.hinted_type(widening.hint(column="s.t.c", existing_type="NUMERIC(10,\n 2)")) == "NUMERIC(10, 2)"
    assert widening.hinted_type("-- a comment\nALTER TABLE t ALTER c TYPE text") is None


PLAN = """-- Running upgrade 0004 -> 0005

CREATE TABLE label (name VARCHAR(20));

ALTER TABLE label ALTER COLUMN name TYPE VARCHAR(40);

ALTER TABLE "Shop".project ALTER COLUMN "Name" TYPE VARCHAR(300);

ALTER TABLE task ALTER COLUMN title TYPE TEXT;

-- alembic-operator: existing type of task.status: VARCHAR(50)

ALTER TABLE task ALTER COLUMN status TYPE VARCHAR(60);

ALTER TABLE task ALTER COLUMN kind TYPE VARCHAR(60), ALTER COLUMN x TYPE TEXT;
"""


def test_the_catalog_is_asked_only_for_type_changes_of_tables_the_plan_did_not_touch_before():
    # label was created by the plan (the catalog does not know it yet); title widens anyway; status has its hint;
    # a statement with two changes is no lone type change
    assert catalog_types.first_touches(PLAN) == {2: ('"Shop".project', "Name")}


def test_a_type_change_names_its_table_and_column_as_postgresql_folds_them():
    assert destructive.type_change("ALTER TABLE IF EXISTS Public.Task ALTER title SET DATA TYPE varchar(9)") == (
        "public.task",
        "title",
        "VARCHAR ( 9 )",
    )
    assert destructive.type_change("ALTER TABLE task ADD COLUMN x int") is None


def test_comment_each_puts_a_line_above_the_statements_it_is_asked_for():
    sql = "-- Running upgrade  -> 1\n\nCREATE TABLE a (x int);\n\nDROP TABLE a;\n"
    out = destructive.comment_each(sql, lambda s: "-- here" if s.strip().startswith("DROP") else None)
    assert out == "-- Running upgrade  -> 1\n\nCREATE TABLE a (x int);\n\n-- here\nDROP TABLE a;\n"
