"""The rehearsal's Jobs (spec.rehearsal): what each container runs against the copy, and where.

The migrate and verify of a rehearsal are the real steps' unchanged commands
behind ``rehearse exec``; every command names the same scratch database, the
one status records (else the one derived from the run's uid); only rehearsal
pods get the other server's URL, and only by secretKeyRef.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from alembic_operator.api import model
from alembic_operator.api.status_rehearsal import RehearsalStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs, rehearsals
from alembic_operator.controller.settings import JobSettings, Settings

from .factories import UID, make_run, make_spec

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))
REHEARSAL_STEPS = [Step.REHEARSE_PREPARE, Step.REHEARSE_MIGRATE, Step.REHEARSE_VERIFY, Step.REHEARSE_DROP]
SCRATCH = rehearsals.scratch_database(run_uid=UID)


def container(step: Step, run: model.RunView | None = None) -> dict:
    job = jobs.build_step_job(run=run or make_run(make_spec(rehearsal={"enabled": True})), step=step, settings=SETTINGS)
    [c] = job["spec"]["template"]["spec"]["containers"]
    return c


def test_the_scratch_database_name_is_prefixed_deterministic_per_run_and_a_valid_identifier():
    other = "0b6e0e7c-1111-4c1e-9d0a-1b2c3d4e5f60"
    names = [rehearsals.scratch_database(run_uid=uid) for uid in (UID, UID, other)]
    assert names[0] == names[1] != names[2]
    assert all(re.fullmatch(r"alembic_rehearsal_[0-9a-f]{16}", name) for name in names), names


def test_prepare_restores_the_runs_backup_in_parallel_and_refuses_past_the_size_limit():
    spec = make_spec(rehearsal={"enabled": True, "jobs": 4, "maxDatabaseBytes": 5_000_000})
    c = container(Step.REHEARSE_PREPARE, make_run(spec))
    loc = naming.location(spec=spec, namespace="shop", run_name="shop-1-4-2", run_uid=UID)
    assert c["image"] == SETTINGS.operator_image
    assert c["command"] == [
        "alembic-operator",
        "rehearse",
        "prepare",
        "--database",
        SCRATCH,
        "--location",
        loc,
        "--jobs",
        "4",
        "--max-database-bytes",
        "5000000",
    ]
    assert "--max-database-bytes" not in container(Step.REHEARSE_PREPARE)["command"]  # unset: no limit


def test_the_rehearsed_migration_is_the_apps_unchanged_migrate_command_in_its_image_and_working_dir():
    spec = make_spec(
        rehearsal={"enabled": True}, migrate={"workingDir": "/srv/app", "target": "b2", "args": ["--x-arg", "v"]}
    )
    rehearsed = container(Step.REHEARSE_MIGRATE, make_run(spec))
    real = jobs.build_step_job(run=make_run(spec), step=Step.MIGRATE, settings=SETTINGS)["spec"]["template"]["spec"]
    [real_container] = real["containers"]
    prefix = ["alembic-operator", "rehearse", "exec", "--database", SCRATCH, "--run"]
    assert rehearsed["command"] == prefix + real_container["command"]
    assert rehearsed["args"] == real_container["args"]  # after --run: the migrate command takes them
    assert (rehearsed["image"], rehearsed["workingDir"]) == ("registry.example/shop:1.4.2", "/srv/app")


def test_the_rehearsed_verification_is_the_verify_command_against_the_copy():
    c = container(Step.REHEARSE_VERIFY)
    prefix = ["alembic-operator", "rehearse", "exec", "--database", SCRATCH, "--run", "alembic-operator", "verify"]
    assert c["command"][: len(prefix)] == prefix
    assert c["image"] == SETTINGS.operator_image and "workingDir" not in c


def test_every_rehearsal_command_names_the_database_status_recorded():
    run = make_run(make_spec(rehearsal={"enabled": True}))
    recorded = model.MigrationRunStatus(rehearsal=RehearsalStatus(database="alembic_rehearsal_recorded"))
    run = dataclasses.replace(run, status=recorded)
    for step in REHEARSAL_STEPS:
        command = container(step, run)["command"]
        assert command[command.index("--database") + 1] == "alembic_rehearsal_recorded", step


def test_another_server_reaches_only_the_rehearsal_pods_and_only_by_secret_reference():
    spec = make_spec(rehearsal={"enabled": True, "urlSecretRef": {"name": "neon-branch", "key": "URL"}})
    run = make_run(spec)
    for step in REHEARSAL_STEPS:
        env = {e["name"]: e for e in container(step, run)["env"]}
        assert env["REHEARSAL_DATABASE_URL"] == {
            "name": "REHEARSAL_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "neon-branch", "key": "URL"}},
        }
    for step in (Step.BACKUP, Step.MIGRATE, Step.VERIFY, Step.RESTORE):
        job = jobs.build_step_job(run=run, step=step, settings=SETTINGS)
        assert "REHEARSAL_DATABASE_URL" not in json.dumps(job), step
    assert all("REHEARSAL_DATABASE_URL" not in json.dumps(container(s)) for s in REHEARSAL_STEPS)  # same server


@pytest.mark.parametrize("jobs_", [0, 33])
def test_the_restore_parallelism_is_bounded(jobs_):
    with pytest.raises(ValueError, match=r"rehearsal\.jobs"):
        make_spec(rehearsal={"jobs": jobs_})
