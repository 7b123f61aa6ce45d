"""ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS, _FAILED and ALEMBIC_OPERATOR_MAX_RUNNING_RUNS: what the chart sets,
and a typo the operator refuses."""

from __future__ import annotations

import pytest

from alembic_operator.controller.settings import Settings


def _jobs(**env: str):
    return Settings.from_env({f"ALEMBIC_OPERATOR_JOB_RETAIN_{k.upper()}": v for k, v in env.items()}).jobs


def test_unset_keeps_an_ended_runs_jobs_five_minutes_and_a_failed_steps_job_until_the_run_goes():
    jobs = _jobs()
    assert (jobs.retain_seconds, jobs.retain_failed) == (300, True)


def test_seconds_forever_and_failed_false_are_read():
    assert _jobs(seconds="0").retain_seconds == 0
    assert _jobs(seconds=" 86400 ").retain_seconds == 86400
    assert _jobs(seconds="forever").retain_seconds is None
    assert _jobs(failed="false").retain_failed is False
    assert _jobs(failed="true").retain_failed is True


@pytest.mark.parametrize("value", ["-1", "5m", "1.5", "never"])
def test_anything_else_stops_the_operator_at_start_naming_the_variable(value: str):
    with pytest.raises(
        ValueError, match=r"ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS must be a whole number \(>= 0\) or 'forever'"
    ):
        _jobs(seconds=value)


def _limit(value: str | None = None) -> int | None:
    env = {} if value is None else {"ALEMBIC_OPERATOR_MAX_RUNNING_RUNS": value}
    return Settings.from_env(env).reconcile.max_running_runs


def test_runs_running_at_once_default_to_ten_and_read_a_number_or_unlimited():
    assert _limit() == 10
    assert _limit(" 40 ") == 40
    assert _limit("unlimited") is None


@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5"])
def test_a_limit_that_lets_nothing_run_or_is_not_a_number_stops_the_operator_naming_the_variable(value: str):
    with pytest.raises(
        ValueError, match=r"ALEMBIC_OPERATOR_MAX_RUNNING_RUNS must be a whole number \(>= 1\) or 'unlimited'"
    ):
        _limit(value)
