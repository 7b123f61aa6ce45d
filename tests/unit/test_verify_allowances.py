"""Which allowance lets a table shrink, vanish or be renamed (pure; job/checks/allowances.py)."""

from __future__ import annotations

import pytest

from alembic_operator.api import errors
from alembic_operator.api.results_allowances import AllowanceUsed
from alembic_operator.job.checks import allowances, rowcounts

BEFORE = {"public.task": 100, "public.legacy": 50, "audit.log": 30, "public.customer": 20}


def declared(*values: str) -> list[allowances.Allowance]:
    return allowances.parse_declared(values)


def test_declarations_parse_into_kind_table_revision_and_the_new_name_of_a_rename():
    assert declared("0003:drop:legacy", "0004:shrink:audit.log", "0005:rename:customer=client") == [
        allowances.Allowance(pattern="legacy", kind="drop", revision="0003"),
        allowances.Allowance(pattern="audit.log", kind="shrink", revision="0004"),
        allowances.Allowance(pattern="customer", kind="rename", revision="0005", to="client"),
    ]


@pytest.mark.parametrize("value", ["0003:truncate:legacy", "0003:drop:", "0003:drop", ":drop:t", "0005:rename:a", "x"])
def test_a_malformed_declaration_is_refused_naming_it(value):
    with pytest.raises(errors.InvalidInput, match="--declared-allowance"):
        allowances.parse_declared([value])


def test_shrink_allows_fewer_rows_but_not_a_vanished_table_and_drop_the_reverse():
    shrink, drop = declared("0004:shrink:task", "0003:drop:legacy")
    assert allowances.allowing("public.task", after=10, allowances=[shrink]) == shrink
    assert allowances.allowing("public.task", after=None, allowances=[shrink]) is None
    assert allowances.allowing("public.legacy", after=None, allowances=[drop]) == drop
    assert allowances.allowing("public.legacy", after=10, allowances=[drop]) is None


def test_a_declaration_is_named_before_the_specs_glob_that_also_matches():
    spec = allowances.from_spec(["*"])
    [drop] = declared("0003:drop:legacy")
    assert allowances.allowing("public.legacy", after=None, allowances=[*spec, drop]) == drop
    assert allowances.allowing("audit.log", after=3, allowances=[*spec, drop]) == spec[0]


def test_check_policy_records_what_allowed_each_table_and_still_fails_the_rest():
    granted = [*declared("0003:drop:legacy"), *allowances.from_spec(["audit.*"])]
    after = {"public.task": 90, "audit.log": 1, "public.customer": 20}
    checks, violations = rowcounts.check_policy(
        before=BEFORE, after=after, allow=lambda t, rows: allowances.allowing(t, after=rows, allowances=granted)
    )
    by_table = {c.table: c for c in checks}
    assert by_table["public.legacy"].status == "allowed" and by_table["public.legacy"].allowed_by == granted[0]
    assert by_table["audit.log"].allowed_by == granted[1]
    assert violations == [rowcounts.Violation("public.task", 100, 90)]


def test_a_declared_rename_finds_the_new_table_in_the_old_ones_schema():
    [rename] = declared("0005:rename:customer=client")
    after = {"public.task": 100, "public.client": 20, "archive.client": 5}
    assert allowances.declared_renames(allowances=[rename], before=BEFORE, after=after) == {
        "public.customer": ("public.client", rename)
    }


def test_a_declared_rename_whose_new_table_is_missing_or_ambiguous_is_no_rename():
    [rename] = declared("0005:rename:customer=client")
    assert allowances.declared_renames(allowances=[rename], before=BEFORE, after={"public.task": 1}) == {}
    two = {"x.client": 1, "y.client": 2}
    assert allowances.declared_renames(allowances=[rename], before=BEFORE, after=two) == {}


def test_a_rename_found_by_oid_is_matched_to_its_declaration():
    [rename] = declared("0005:rename:customer=client")
    assert allowances.rename_declared("public.customer", "public.client", [rename]) == rename
    assert allowances.rename_declared("public.customer", "public.other", [rename]) is None


def test_every_used_allowance_is_named_with_what_happened_and_who_allowed_it():
    [drop, shrink] = declared("0003:drop:legacy", "0004:shrink:task")
    used = [
        allowances.used("public.legacy", before=50, after=None, allowance=drop),
        allowances.used("public.task", before=100, after=0, allowance=shrink),
        allowances.used("audit.log", before=30, after=3, allowance=allowances.from_spec(["audit.*"])[0]),
        allowances.used("public.customer", before=20, after=20, allowance=drop, to="public.client"),
    ]
    assert [u.change for u in used] == ["dropped", "shrank", "shrank", "renamed"]
    assert allowances.summarize(used) == (
        "allowed: legacy dropped (50 rows; declared by revision 0003); "
        "task shrank 100 → 0 rows (declared by revision 0004); "
        "audit.log shrank 30 → 3 rows (allowed by the run's allowDecrease audit.*); "
        "customer renamed to client (20 → 20 rows; declared by revision 0003)"
    )
    assert allowances.summarize([]) == ""
    assert AllowanceUsed.model_validate(used[0].model_dump(by_alias=True)) == used[0]
