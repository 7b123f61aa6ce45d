"""Condition types, reasons and event reasons are documented constants (CNPG style)."""

import inspect
import re

from alembic_operator.api import conditions


def constants_of(cls):
    return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


def test_every_constant_has_a_meaning_comment():
    for cls in (conditions.ConditionType, conditions.Reason, conditions.EventReason):
        source = inspect.getsource(cls)
        for name in constants_of(cls):
            line = next(l for l in source.splitlines() if l.strip().startswith(f"{name} ="))
            assert "#:" in line, f"{cls.__name__}.{name} has no meaning comment"


def test_reasons_are_valid_condition_reasons():
    for cls in (conditions.Reason, conditions.EventReason):
        for value in constants_of(cls).values():
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", value), value


def test_every_step_has_a_condition_type():
    assert set(conditions.STEP_CONDITION) == {"plan", "backup", "migrate", "verify", "restore"}
    assert set(conditions.STEP_CONDITION.values()) <= set(conditions.ConditionType.ALL)
