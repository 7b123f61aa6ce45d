"""``verify.rowCounts.mode: content`` reaches the verify step, and the CRD admits it (issue 13)."""

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
