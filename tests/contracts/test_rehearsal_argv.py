"""The rehearsal Jobs' argv is accepted by the real CLI, and what ``rehearse exec`` runs is the real step's argv.

``rehearse exec --run COMMAND...`` hands the rest of its argv to the command it runs against the copy:
that inner argv must be the one the real migrate or verify Job runs (the same command and flags),
and it must parse too (the step in the pod parses it after the exec).
"""

from __future__ import annotations

from typing import Any

import pytest

from alembic_operator import cli
from alembic_operator.api.model import RunView
from alembic_operator.api.steps import Step
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs, rehearsals
from alembic_operator.controller.settings import JobSettings, Settings
from tests.building.factories import NOW, UID, make_spec

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))
SPECS: dict[str, dict[str, Any]] = {
    "defaults": {"rehearsal": {"enabled": True}},
    "everything-set": {
        "rehearsal": {"enabled": True, "jobs": 6, "maxDatabaseBytes": 123456789},
        "migrate": {"target": "0007_orders", "lockTimeout": "500ms", "args": ["--lock-wait-seconds", "30"]},
        "verify": {"rowCounts": {"mode": "estimated", "allowDecrease": ["public.sessions"]}},
    },
}
SCRATCH = rehearsals.scratch_database(run_uid=UID)
#: The real step each exec stands for.
REAL = {Step.REHEARSE_MIGRATE: Step.MIGRATE, Step.REHEARSE_VERIFY: Step.VERIFY}


def _run(spec: str) -> RunView:
    return RunView(name="shop-1-4-2", namespace="shop", uid=UID, spec=make_spec(**SPECS[spec]), creation_timestamp=NOW)


def _argv(step: Step, run: RunView) -> list[str]:
    [container] = jobs.build_step_job(run=run, step=step, settings=SETTINGS)["spec"]["template"]["spec"]["containers"]
    return [*container.get("command", []), *container.get("args", [])]


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("step", [Step.REHEARSE_PREPARE, Step.REHEARSE_DROP])
def test_prepare_and_drop_argv_parse_with_the_runs_scratch_database_and_folder(spec: str, step: Step) -> None:
    run = _run(spec)
    args = cli.build_parser("rehearse").parse_args(_argv(step, run)[1:])
    assert (args.command, args.action, args.database) == ("rehearse", step.removeprefix("rehearse-"), SCRATCH)
    assert args.location == naming.location(spec=run.spec, namespace="shop", run_name="shop-1-4-2", run_uid=UID)
    if step == Step.REHEARSE_PREPARE:
        rehearsal = run.spec.rehearsal
        assert (args.jobs, args.max_database_bytes) == (rehearsal.jobs, rehearsal.max_database_bytes)


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("step", sorted(REAL))
def test_exec_runs_the_real_steps_argv_against_the_copy_and_it_parses(spec: str, step: Step) -> None:
    run = _run(spec)
    args = cli.build_parser("rehearse").parse_args(_argv(step, run)[1:])
    assert (args.command, args.action, args.database) == ("rehearse", "exec", SCRATCH)
    assert args.argv == _argv(REAL[step], run)
    inner = cli.build_parser(args.argv[1]).parse_args(args.argv[1:])
    assert inner.command == REAL[step]
