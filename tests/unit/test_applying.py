"""The status patch: a JSON merge patch that also removes what the new status dropped."""

from alembic_operator.controller import applying


def test_a_fresh_step_record_loses_the_old_attempts_outcome():
    old = {
        "phase": "RollbackHeld",
        "steps": {"restore": {"attempt": 1, "outcome": "Failed", "reason": "X"}},
        "queue": {"position": 1},
    }
    new = {"phase": "RollingBack", "steps": {"restore": {"attempt": 2, "job": "r-2"}}}
    patch = applying._with_removals(old=old, new=new)
    assert patch == {
        "phase": "RollingBack",
        "queue": None,
        "steps": {"restore": {"attempt": 2, "job": "r-2", "outcome": None, "reason": None}},
    }
