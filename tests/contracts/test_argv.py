"""Every argv the Job builders produce is accepted by the real CLI parser, with the values the spec meant."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from alembic_operator import cli
from alembic_operator.api import constants
from alembic_operator.api.model import DEFAULT_MIGRATE_COMMAND, RunView
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs
from alembic_operator.controller.settings import JobSettings, Settings
from tests.building.factories import NOW, UID, make_run, make_spec

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))

#: Spec variations that change some step's flags (each is merged over the factories' base spec).
SPECS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything-set": {
        "migrate": {
            "target": "0007_orders",
            "lockTimeout": "500ms",
            "workingDir": "/app",
            "args": ["--lock-wait-seconds", "30", "--config", "deploy/alembic.ini"],
        },
        "backup": {
            "format": "directory",
            "jobs": 4,
            "compression": "zstd:3",
            "verify": "restore",
            "retention": {"keepLast": 3, "maxAgeDays": 14},
        },
        "verify": {
            "rowCounts": {
                "mode": "estimated",
                "allowDecrease": ["public.sessions", "audit.*"],
                "include": ["public.*", "billing.*"],
                "exclude": ["public.tmp_*"],
            }
        },
        "plan": {"destructive": "block"},
        "rollback": {"onForeignWrites": "restore"},
    },
    "row-counts-off-allowing-plan": {
        "verify": {"rowCounts": {"mode": "off"}},
        "plan": {"destructive": "allow"},
        "backup": {"compression": "0"},
    },
}
APPROVED = {constants.ANNOTATION_APPROVE_RESTORE: "true"}


def _run(spec: str, *, approved: bool = False) -> RunView:
    return RunView(
        name="shop-1-4-2",
        namespace="shop",
        uid=UID,
        spec=make_spec(**SPECS[spec]),
        creation_timestamp=NOW,
        annotations=APPROVED if approved else {},
    )


def _argv(job: dict[str, Any]) -> list[str]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return [*container.get("command", []), *container.get("args", [])]


def _parse(job: dict[str, Any]) -> argparse.Namespace:
    """Parse the Job's argv as the step pod does: the subcommand's own parser only."""
    argv = _argv(job)
    assert argv[0] == DEFAULT_MIGRATE_COMMAND[0], argv
    return cli.build_parser(argv[1]).parse_args(argv[1:])


def _build(step: str, run: RunView, **kwargs: Any) -> dict[str, Any]:
    return jobs.build_step_job(run=run, step=step, settings=SETTINGS, **kwargs)


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("step", constants.STEPS)
def test_every_steps_argv_is_accepted_by_the_cli(step: str, spec: str) -> None:
    args = _parse(_build(step, _run(spec), expect_revision="0007_orders" if step == "verify" else None))
    assert args.command == step


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_the_location_flag_names_the_runs_folder(spec: str) -> None:
    run = _run(spec)
    folder = naming.location(spec=run.spec, namespace=run.namespace, run_name=run.name, run_uid=run.uid)
    for step in ("plan", "backup", "verify", "restore"):
        assert _parse(_build(step, run)).location == folder


def test_backup_flags_carry_the_spec() -> None:
    args = _parse(_build("backup", _run("everything-set")))
    assert (args.format, args.jobs, args.compression, args.verify) == ("directory", 4, "zstd:3", "restore")
    assert (args.retention_keep_last, args.retention_max_age_seconds) == (3, 14 * 86400)


def test_verify_flags_carry_the_spec_and_the_expected_revision() -> None:
    args = _parse(_build("verify", _run("everything-set"), expect_revision="0007_orders"))
    assert (args.mode, args.expect_revision) == ("estimated", "0007_orders")
    assert (args.allow_decrease, args.include, args.exclude) == (
        ["public.sessions,audit.*"],
        ["public.*", "billing.*"],
        ["public.tmp_*"],
    )


def test_migrate_gets_the_target_lock_timeout_and_the_users_own_args() -> None:
    args = _parse(_build("migrate", _run("everything-set")))
    assert (args.target, args.lock_timeout) == ("0007_orders", "500ms")
    assert (args.lock_wait_seconds, args.config) == (30.0, "deploy/alembic.ini")


def test_plan_gets_the_target_and_policy() -> None:
    args = _parse(_build("plan", _run("everything-set")))
    assert (args.target, args.policy) == ("0007_orders", "block")


@pytest.mark.parametrize(
    ("spec", "approved", "expected"),
    [("defaults", False, "hold"), ("defaults", True, "restore"), ("everything-set", False, "restore")],
)
def test_restore_holds_for_foreign_writes_unless_the_spec_or_a_person_says_restore(
    spec: str, approved: bool, expected: str
) -> None:
    assert _parse(_build("restore", _run(spec, approved=approved))).on_foreign_writes == expected


def test_a_custom_migrate_command_is_passed_through_untouched() -> None:
    run = make_run(make_spec(migrate={"command": ["python", "-m", "app.migrate"], "args": ["--fast"]}))
    assert _argv(_build("migrate", run)) == ["python", "-m", "app.migrate", "--fast"]
