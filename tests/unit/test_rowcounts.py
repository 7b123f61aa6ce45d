"""The row-count policy of verify and the exact comparison of restore."""

from __future__ import annotations

import pytest

from alembic_operator.job.checks import rowcounts

BEFORE = {"public.task": 3000, "public.comment": 500, "audit.log": 10, "public.alembic_version": 1}


@pytest.mark.parametrize(
    "name, pattern, expected",
    [
        ("public.task", "task", True),
        ("audit.task", "task", True),
        ("public.task", "public.task", True),
        ("audit.task", "public.task", False),
        ("public.task_2024", "task_*", True),
        ("audit.log", "audit.*", True),
        ("public.log", "audit.*", False),
        ("public.task", "", False),
        ("public.Task", "task", False),
    ],
)
def test_patterns_match_schema_table_or_bare_table_names(name: str, pattern: str, expected: bool) -> None:
    assert rowcounts.matches(name, pattern) is expected


def test_comma_separated_repeatable_flags_are_flattened() -> None:
    assert rowcounts.split_patterns(["a,b", " c ", ",", "d,"]) == ["a", "b", "c", "d"]
    assert rowcounts.split_patterns(None) == []


def test_unchanged_counts_pass() -> None:
    checks, violations = rowcounts.check_policy(before=BEFORE, after=dict(BEFORE))
    assert violations == [] and {c.status for c in checks} == {"ok"}


def test_more_rows_and_new_tables_pass() -> None:
    after = {k: v + 5 for k, v in BEFORE.items()} | {"public.label": 3}
    assert rowcounts.check_policy(before=BEFORE, after=after)[1] == []


def test_lost_rows_and_missing_tables_are_violations_in_name_order() -> None:
    after = dict(BEFORE, **{"public.task": 2880})
    del after["public.comment"]
    _, violations = rowcounts.check_policy(before=BEFORE, after=after)
    assert [v.as_dict() for v in violations] == [
        {"table": "public.comment", "before": 500, "after": None},
        {"table": "public.task", "before": 3000, "after": 2880},
    ]
    assert rowcounts.summarize(violations) == "comment disappeared; task lost 120 rows (3000 → 2880)"


def test_allowed_tables_may_shrink_or_vanish() -> None:
    after = {"public.task": 0, "audit.log": 10, "public.alembic_version": 1}
    checks, violations = rowcounts.check_policy(before=BEFORE, after=after, allow_decrease=["task", "comment"])
    assert violations == []
    assert {c.table: c.status for c in checks}["public.task"] == "allowed"


def test_exclude_and_include_choose_the_tables_checked() -> None:
    after = {"public.alembic_version": 1}
    checks, violations = rowcounts.check_policy(
        before=BEFORE, after=after, exclude=["public.*"], include=["audit.*", "task"]
    )
    assert [v.table for v in violations] == ["audit.log"]
    assert {c.table: c.status for c in checks}["public.task"] == "excluded"
    assert {c.table: c.status for c in checks}["public.comment"] == "excluded"


def test_only_included_tables_are_checked() -> None:
    checks, violations = rowcounts.check_policy(before=BEFORE, after={}, include=["audit.log"])
    assert [v.table for v in violations] == ["audit.log"]
    assert sum(c.status != "excluded" for c in checks) == 1


def test_tolerance_forgives_small_drops_of_estimates_but_not_disappearance() -> None:
    after = {"public.task": 2900, "public.comment": 400, "public.alembic_version": 1}
    _, violations = rowcounts.check_policy(before=BEFORE, after=after, tolerance=0.05)
    assert [v.describe() for v in violations] == ["audit.log disappeared", "comment lost 100 rows (500 → 400)"]


def test_a_message_names_at_most_ten_tables() -> None:
    before = {f"public.t{i:02}": 10 for i in range(15)}
    _, violations = rowcounts.check_policy(before=before, after={})
    text = rowcounts.summarize(violations)
    assert text.count("disappeared") == 10 and text.endswith("and 5 more")


def test_exact_comparison_reports_every_difference() -> None:
    mismatches = rowcounts.compare_exact(
        expected={"public.a": 1, "public.b": 2, "public.c": 3}, actual={"public.a": 1, "public.b": 3, "public.d": 4}
    )
    assert [m.describe() for m in mismatches] == [
        "public.b has 3 rows, expected 2",
        "public.c is missing",
        "public.d is not in the backup",
    ]


def test_exact_comparison_limited_to_chosen_tables() -> None:
    mismatches = rowcounts.compare_exact(
        expected={"public.a": 1, "public.b": 2}, actual={"public.a": 1}, only=["public.a"]
    )
    assert mismatches == []


def test_a_doctored_manifest_fails_the_restore_verification_naming_the_table() -> None:
    from alembic_operator.job.commands import backup

    mismatches = backup.check_restored(
        expected={"public.task": 3001, "public.project": 40}, actual={"public.task": 3000, "public.project": 40}
    )
    assert rowcounts.describe_mismatches(mismatches) == "public.task has 3000 rows, expected 3001"
