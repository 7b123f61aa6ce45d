"""The downgrade Job (rollback.method: downgrade): the app's image and working directory, migrate's flags."""

from __future__ import annotations

from alembic_operator.api.steps import Step
from alembic_operator.controller.builders import jobs
from alembic_operator.controller.settings import JobSettings, Settings

from .factories import make_run, make_spec

SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))


def container(spec_over: dict) -> dict:
    run = make_run(make_spec(rollback={"method": "downgrade"}, **spec_over))
    job = jobs.build_step_job(run=run, step=Step.DOWNGRADE, settings=SETTINGS)
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 1800
    [c] = job["spec"]["template"]["spec"]["containers"]
    return c


def test_it_runs_alembic_operator_downgrade_in_the_apps_image_and_working_directory_with_migrates_flags():
    c = container(
        {
            "migrate": {
                "image": "registry.example/shop:1.4.2",
                "workingDir": "/srv/app",
                "lockTimeout": "3s",
                "args": ["--config", "db/alembic.ini", "--url-env", "SHOP_DB"],
            }
        }
    )
    assert c["image"] == "registry.example/shop:1.4.2" and c["workingDir"] == "/srv/app"
    assert c["command"] == ["alembic-operator", "downgrade"]
    assert c["args"] == ["--lock-timeout", "3s", "--config", "db/alembic.ini", "--url-env", "SHOP_DB"]
    env = {e["name"]: e for e in c["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "shop-db"  # by reference (safety rule 1)
    assert env["ALEMBIC_OPERATOR_LOCATION"]["value"].startswith("s3://backups/pg/")  # where the schema record is


def test_a_custom_migrate_commands_arguments_are_not_passed_to_the_downgrade():
    c = container({"migrate": {"command": ["flask", "db", "upgrade"], "args": ["--directory", "migrations"]}})
    assert c["command"] == ["alembic-operator", "downgrade"] and c["args"] == ["--lock-timeout", "10s"]
