"""``verify.rowCounts.mode: content`` and ``backup.schemas`` reach their steps; the CRD admits them (issue 13)."""

from __future__ import annotations

import pydantic
import pytest

from alembic_operator.api import crd
from alembic_operator.controller.builders import jobs

from .factories import make_run, make_spec


def test_content_mode_is_passed_to_the_verify_step() -> None:
    run = make_run(make_spec(verify={"rowCounts": {"mode": "content"}}))
    command = jobs.verify_command(run=run)
    assert command[command.index("--mode") + 1] == "content"


def test_the_crd_and_the_model_admit_content_and_nothing_unknown() -> None:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    mode = schema["properties"]["spec"]["properties"]["verify"]["properties"]["rowCounts"]["properties"]["mode"]
    assert "content" in mode["enum"]
    with pytest.raises(pydantic.ValidationError):
        make_spec(verify={"rowCounts": {"mode": "checksum"}})


def test_the_apps_schemas_reach_the_backup_step_one_flag_each() -> None:
    run = make_run(make_spec(backup={"schemas": ["public", 'we.ird "q"']}))
    command = jobs.backup_command(run=run)
    assert command[-4:] == ["--schema", "public", "--schema", 'we.ird "q"']
    assert "--schema" not in jobs.backup_command(run=make_run(make_spec()))
    with pytest.raises(pydantic.ValidationError):
        make_spec(backup={"schemas": [""]})
