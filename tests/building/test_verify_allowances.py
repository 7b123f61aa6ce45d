"""The verify Job carries the data changes the revisions declared (status.plan.declaredAllowances), issue 15.

Built from the run's status, parsed back by the verify step's own parser and
allowance reader: what the operator passes is what verify applies.
"""

from __future__ import annotations

import dataclasses

from alembic_operator import cli
from alembic_operator.api.model import MigrationRunStatus, PlanStatus
from alembic_operator.api.status_plan import DeclaredAllowance
from alembic_operator.controller.builders import jobs
from alembic_operator.controller.settings import JobSettings, Settings
from alembic_operator.job.checks import allowances

from .factories import make_run, make_spec

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))
DECLARED = [
    DeclaredAllowance(revision="0003", table="legacy_order", kind="drop"),
    DeclaredAllowance(revision="0003", table="shop.order", kind="shrink"),
    DeclaredAllowance(revision="0004", table="customer", kind="rename", to="client"),
]


def verify_argv(*, plan: PlanStatus | None, **spec: object) -> list[str]:
    run = dataclasses.replace(make_run(make_spec(**spec)), status=MigrationRunStatus(plan=plan))
    job = jobs.build_step_job(run=run, step="verify", settings=SETTINGS, expect_revision="b2")
    [container] = job["spec"]["template"]["spec"]["containers"]
    return [*container["command"], *container.get("args", [])]


def test_the_declared_allowances_reach_verify_and_read_back_as_the_same_allowances():
    argv = verify_argv(
        plan=PlanStatus(declared_allowances=DECLARED), verify={"rowCounts": {"allowDecrease": ["tmp_*"]}}
    )
    args = cli.build_parser("verify").parse_args(argv[1:])
    assert args.allow_decrease == ["tmp_*"]
    assert allowances.parse_declared(args.declared_allowance) == [
        allowances.Allowance(pattern="legacy_order", kind="drop", revision="0003"),
        allowances.Allowance(pattern="shop.order", kind="shrink", revision="0003"),
        allowances.Allowance(pattern="customer", kind="rename", revision="0004", to="client"),
    ]


def test_a_run_whose_plan_declared_nothing_or_was_skipped_passes_no_declarations():
    assert "--declared-allowance" not in verify_argv(plan=PlanStatus(statements=3))
    assert "--declared-allowance" not in verify_argv(plan=None)
