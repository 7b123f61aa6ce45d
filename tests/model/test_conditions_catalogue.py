"""Condition types, reasons and event reasons are documented constants (CNPG style)."""

import inspect
import re

from alembic_operator.api import conditions, results
from alembic_operator.api.steps import STEPS


def constants_of(cls):
    return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


def test_every_constant_has_a_meaning_comment():
    for cls in (conditions.ConditionType, conditions.Reason, conditions.EventReason):
        source = inspect.getsource(cls)
        for name in constants_of(cls):
            line = next(text for text in source.splitlines() if text.strip().startswith(f"{name} ="))
            assert "#:" in line, f"{cls.__name__}.{name} has no meaning comment"


def test_reasons_are_valid_condition_reasons():
    for cls in (conditions.Reason, conditions.EventReason):
        for value in constants_of(cls).values():
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", value), value


def test_every_step_sets_a_documented_condition_type_and_event_reasons():
    event_reasons = set(constants_of(conditions.EventReason).values())
    for info in STEPS.values():
        assert info.condition in conditions.ConditionType.ALL
        assert {info.started, info.succeeded, info.failed} <= event_reasons


def test_an_unreadable_result_has_the_reason_the_results_module_gives_it():
    assert conditions.Reason.UNREADABLE_RESULT == results.UNREADABLE_REASON
