"""Every step container is told which majors the operator image's client tools lack SSL for.

Plan, migrate, drift and downgrade run in the application's image, which has no pg_dump,
pg_restore or psql to ask; without this word a URL requiring TLS to a server whose backup could
never run over TLS would be migrated anyway (issue 14, :mod:`alembic_operator.job.database.tls`).
The operator finds the majors at its start (``cli``) and keeps them in its settings; unknown (a
controller started without ``cli``) adds nothing, so steps ask their own tools as before.
"""

from __future__ import annotations

import pytest

from alembic_operator.api import constants
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller.builders import jobs
from alembic_operator.controller.settings import Settings

from .factories import make_run

ENV = {"ALEMBIC_OPERATOR_IMAGE": "ghcr.io/example/alembic-operator:0.1.0"}


def _step_env(step: Step, settings: Settings) -> dict[str, str | None]:
    [container] = jobs.build_step_job(run=make_run(), step=step, settings=settings)["spec"]["template"]["spec"][
        "containers"
    ]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_app_image_steps_and_the_operator_image_steps_alike_carry_the_majors() -> None:
    settings = Settings.from_env({**ENV, constants.ENV_TOOLS_WITHOUT_SSL: "18,16"})
    assert settings.jobs.tools_without_ssl == (16, 18)
    told = {step: _step_env(step, settings).get(constants.ENV_TOOLS_WITHOUT_SSL) for step in Step}
    assert told == dict.fromkeys(Step, "16,18")
    app_steps = {step for step in Step if STEPS[step].image == "app"}
    assert {Step.PLAN, Step.MIGRATE, Step.DRIFT, Step.DOWNGRADE} <= app_steps  # the ones with no tools to ask
    assert STEPS[Step.VERIFY].image != "app"


@pytest.mark.parametrize(("value", "expected"), [("", ""), (None, None)])
def test_none_found_is_said_and_unknown_adds_nothing(value: str | None, expected: str | None) -> None:
    """An empty value (the operator found no major lacking SSL) is passed on; unset (unknown) adds nothing."""
    env = ENV if value is None else {**ENV, constants.ENV_TOOLS_WITHOUT_SSL: value}
    for step in (Step.PLAN, Step.MIGRATE, Step.DRIFT, Step.VERIFY):
        names = _step_env(step, Settings.from_env(env))
        assert names.get(constants.ENV_TOOLS_WITHOUT_SSL) == expected, step
        assert (constants.ENV_TOOLS_WITHOUT_SSL in names) == (value is not None), step
