"""``--log-format json`` (or ALEMBIC_OPERATOR_LOG_FORMAT=json): every stderr line of a step and of the
operator is one JSON object a log collector can parse (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from testbed import tools

EXAMPLE = tools.REPO / "alembic" / "example"


def _json_lines(stderr: str) -> list[dict[str, object]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no log line at all"
    return [json.loads(line) for line in lines]  # a line that is not JSON fails here


def test_a_failing_steps_every_log_line_is_json_with_its_reason_and_a_redacted_url() -> None:
    env = {
        **os.environ,
        "ALEMBIC_OPERATOR_LOG_FORMAT": "json",
        "DATABASE_URL": "postgresql://app:s3cr3t-pw@127.0.0.1:9/app",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic_operator.cli",
            "--log-level",
            "DEBUG",
            "--termination-message-path",
            "/dev/null",
            "wait",
            "--timeout-seconds",
            "0",
        ],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    entries = _json_lines(done.stderr)
    assert {"timestamp", "severity", "logger", "message"} <= set(entries[-1])
    assert entries[-1]["severity"] == "error" and "WaitTimeout" in str(entries[-1]["message"])
    assert "s3cr3t-pw" not in done.stderr


def test_the_operators_log_lines_are_kopfs_json_naming_the_object_and_only_once() -> None:
    probe = (
        "import logging, kopf\n"
        "from alembic_operator import cli\n"
        "from alembic_operator.controller import main\n"
        "cli.configure_logging(log_format='json', level='INFO')\n"
        "main.configure_logging(log_format='json', level='INFO')\n"
        "body = {'metadata': {'namespace': 'shop', 'name': 'release-1', 'uid': 'u1'}, 'kind': 'MigrationRun'}\n"
        "logger = kopf.ObjectLogger(body=kopf.Body(body), settings=kopf.OperatorSettings())\n"
        "logger.info('backup started')\n"
        "logging.getLogger('alembic_operator.controller').warning('plain\\nmulti-line')\n"
        "try:\n"
        "    raise ValueError('boom')\n"
        "except ValueError:\n"
        "    logging.getLogger('kopf').exception('handler failed')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    entries = _json_lines(done.stderr)
    assert [e["message"] for e in entries] == ["backup started", "plain\nmulti-line", "handler failed"], done.stderr
    obj = entries[0]["object"]
    assert isinstance(obj, dict)
    assert (obj["kind"], obj["namespace"], obj["name"]) == ("MigrationRun", "shop", "release-1")
    assert "ValueError: boom" in str(entries[2]["exc_info"])
