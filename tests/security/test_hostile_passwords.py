"""Hostile passwords through the real steps (issue 14, finding 6): none reaches anything a person can read.

Hypothesis generates passwords of ``@ % ' " \\ & = ? # / :``, spaces, unicode and URL-encoded
parameter names (``%70assword=``); each gets its own role and database on PostgreSQL 15 and
its own S3 run folder. The steps run as a Job pod runs them (console script, termination-message
file, DEBUG logs): plan, backup, migrate, verify succeed with the password in one URL form
(percent-encoded userinfo or a ``?password=`` parameter in any spelling); then, with the other
form, a wrong password fails authentication and a failing migration is restored. stdout,
stderr, every termination message and every S3 object the run wrote must hold the password
in no form. Small by default (``HOSTILE_PASSWORD_EXAMPLES``, default 3 in ``make test``; ``make
test-full`` and ``make test-security-full`` run 20); the
redaction function alone is covered by test_redaction.py, the operator's side by
test_secrets_never_leak.py (the same strategy: :mod:`tests.security.passwords`). This module must
not weaken a check to make a password pass.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from testbed import postgres as tb_postgres
from tests.example.support import CLI, HEAD, app_dir
from tests.security import passwords
from tests.steps import step_env

pytestmark = pytest.mark.testbed

EXAMPLES = int(os.environ.get("HOSTILE_PASSWORD_EXAMPLES", "3"))


def _run(step: str, *args: str, url: str, env: dict[str, str], cwd: Path, folder: Path) -> dict[str, Any]:
    """The console script as a Job pod runs it; everything it left behind that someone could read."""
    term = folder / f"termination-{len(list(folder.iterdir()))}-{step}.json"
    proc = subprocess.run(
        [str(CLI), "--log-level", "DEBUG", "--termination-message-path", str(term), step, *args],
        cwd=cwd,
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
    )
    message = term.read_text(encoding="utf-8") if term.exists() else ""
    return {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "termination": message}


def _s3_texts(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    client = s3.client()
    keys = [key for key in s3.keys(bucket) if key.startswith(prefix)]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace") for key in keys}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # a failing example is reported as found: shrinking re-runs ~9 steps per try (minutes on the bed)
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    # the function-scoped fixtures are only the session's servers, a bucket and a folder: each
    # example makes its own role, database, S3 prefix and sub-folder, so examples share no state
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(password=passwords.PASSWORDS, forms=passwords.URL_FORMS, param=st.sampled_from(passwords.PASSWORD_PARAMETERS))
def test_a_hostile_password_appears_nowhere_after_success_and_failure(
    password: str, forms: tuple[str, str], param: str, pg15: tb_postgres.PostgresServer, s3: Any, bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    run_name = f"run-{secrets.token_hex(4)}"
    prefix = f"shop/migrations/{run_name}/"
    location = f"s3://{bucket}/{prefix}"
    folder = tmp_path / run_name
    folder.mkdir()
    env = step_env(database_url=None, s3=s3)
    with passwords.owner(pg15, password) as (role, database):
        good = passwords.url(pg15, role, password, database, forms[0], param)
        other = passwords.url(pg15, role, password, database, forms[1], param)
        wrong = passwords.url(pg15, role, password + "-wrong", database, forms[1], param)
        runs = {
            "plan": _run("plan", "--location", location, url=good, env=env, cwd=app_dir(), folder=folder),
            "backup": _run("backup", "--location", location, url=good, env=env, cwd=app_dir(), folder=folder),
            "migrate": _run("migrate", url=good, env=env, cwd=app_dir(), folder=folder),
            "verify": _run(
                "verify", "--location", location, "--expect-revision", HEAD, url=good, env=env, cwd=app_dir(),
                folder=folder,
            ),
        }  # fmt: skip
        assert {step: run for step, run in runs.items() if run["code"] != 0} == {}
        failing = {
            "wrong-password backup": _run("backup", "--location", location, url=wrong, env=env, cwd=app_dir(),
                                          folder=folder),
            "wrong-password migrate": _run("migrate", url=wrong, env=env, cwd=app_dir(), folder=folder),
            "failing migrate": _run("migrate", url=other, env=env, cwd=app_dir("raises"), folder=folder),
        }  # fmt: skip
        runs |= failing
        runs["restore"] = _run(
            "restore", "--location", location, "--on-foreign-writes", "restore",
            url=other, env=env, cwd=app_dir(), folder=folder,
        )  # fmt: skip
        after = pg15.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database)
    # the failures are the ones meant: authentication, the scenario's migration; the restore worked
    assert all(run["code"] != 0 for run in failing.values()), failing
    assert "authentication failed" in failing["wrong-password backup"]["termination"], failing
    assert role in failing["wrong-password backup"]["termination"], "the messages checked are the step's own"
    assert "authentication failed" in failing["wrong-password migrate"]["termination"], failing
    assert runs["restore"]["code"] == 0, runs["restore"]
    assert after == "0", "the restore brought back the empty pre-migration database"
    texts = {f"{step} {part}": text for step, run in runs.items() for part, text in run.items() if part != "code"}
    texts |= {f"s3 {key}": text for key, text in _s3_texts(s3, bucket, prefix).items()}
    assert any(key.endswith("plan.sql") for key in texts) and any(key.endswith("verify.json") for key in texts)
    leaks = {where: sorted(f for f in passwords.forms(password) if f in text) for where, text in texts.items()}
    assert {where: found for where, found in leaks.items() if found} == {}
