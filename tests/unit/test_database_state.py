"""Pure parts of the database-level state: list settings split as PostgreSQL splits them, refusals named."""

from __future__ import annotations

from alembic_operator.job.database import database_state


def test_a_list_setting_splits_into_its_quoted_elements() -> None:
    assert database_state.split_list('"$user", public') == ["$user", "public"]
    assert database_state.split_list('"a,b", "say ""hi""",x') == ["a,b", 'say "hi"', "x"]
    assert database_state.split_list("") == []


def test_refusals_name_subscriptions_survivors_and_superuser_only_objects() -> None:
    current = {
        "subscriptions": ["feed"],
        "survivors": ["language plperl"],
        "eventTriggers": [["audit", "x", "O", "f()"]],
    }
    recorded = {"publications": [{"name": "all", "allTables": True}]}
    found = database_state.refusals(recorded=recorded, current=current, superuser=False)
    assert [f.split(" (")[0] for f in found] == [
        "subscription feed",
        "language plperl",
        "event trigger audit",
        "publication all FOR ALL TABLES",
    ]
    assert database_state.refusals(recorded=recorded, current={}, superuser=True) == []
