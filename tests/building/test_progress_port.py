"""The backup and restore step containers declare the port their progress server listens on.

A named containerPort lets a NetworkPolicy (or a person reading the pod) see that the operator
reaches these pods on it; the number must be the one job/progress.py really serves on.
"""

from __future__ import annotations

import pytest

from alembic_operator.api.steps import Step
from alembic_operator.controller.builders import jobs
from alembic_operator.controller.settings import JobSettings, Settings
from alembic_operator.job import progress

from .factories import make_run

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))


def _container(step: Step) -> dict:
    [container] = jobs.build_step_job(run=make_run(), step=step, settings=SETTINGS)["spec"]["template"]["spec"][
        "containers"
    ]
    return container


@pytest.mark.parametrize("step", [Step.BACKUP, Step.RESTORE])
def test_streaming_steps_declare_the_port_their_progress_is_served_on(step, monkeypatch):
    container = _container(step)
    assert "ALEMBIC_OPERATOR_PROGRESS_PORT" not in {e["name"] for e in container["env"]}  # no override set
    monkeypatch.delenv("ALEMBIC_OPERATOR_PROGRESS_PORT", raising=False)  # as in the pod
    assert container["ports"] == [{"name": "progress", "containerPort": progress.port(), "protocol": "TCP"}]


@pytest.mark.parametrize("step", [s for s in Step if s not in (Step.BACKUP, Step.RESTORE)])
def test_other_steps_declare_no_port(step):
    assert "ports" not in _container(step)
