"""Safety rule 6, checked on everything an end-to-end run leaves behind: the database password and the
S3 secret key appear in no log, Event, status, Job or Pod spec, termination message or S3 result.

The database password is a hostile one drawn from the strategy the step-level test uses
(:mod:`tests.security.passwords`): one per ``make test`` (printed with its seed;
``HOSTILE_PASSWORD_SEED`` replays it), ``HOSTILE_PASSWORD_RUNS`` more in ``make test-security-full``.
Each drawn password gets its own role and database and goes through the runs the test makes
anyway: a success, a failed verification that restores, and a wrong password.
"""

from __future__ import annotations

import json
import os
import secrets

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from testbed.pytest_data import Database
from tests.faults.support import on_pg15, seeded
from tests.security import passwords

RUNS = int(os.environ.get("HOSTILE_PASSWORD_RUNS", "1"))
SEED = passwords.seed_from_env("HOSTILE_PASSWORD_SEED")


def _leftovers(app, operator, kubelet) -> dict[str, str]:
    """Every text a person or a tool could read after the runs, by where it came from."""
    k = app.cluster.kubectl
    ns = app.namespace
    found = {
        "operator log": operator.log_text(),
        "events": k("-n", ns, "get", "events", "-o", "json").stdout,
        "migrationruns (spec and status)": k("-n", ns, "get", "migrationruns", "-o", "json").stdout,
        "jobs": k("-n", ns, "get", "jobs", "-o", "json").stdout,
        "pods (incl. termination messages)": k("-n", ns, "get", "pods", "-o", "json").stdout,
    }
    logs = kubelet.pod_log_files(ns)
    assert logs, f"no pod logs of {ns} on the node"
    for path in logs:
        found[f"pod log {path.parent.parent.name}/{path.parent.name}/{path.name}"] = path.read_text(errors="replace")
    for key in app.s3.keys(app.bucket):  # every object: results, plan.sql, the dumps
        body = app.s3.client().get_object(Bucket=app.bucket, Key=key)["Body"].read()
        found[f"s3://{app.bucket}/{key}"] = body.decode(errors="replace")
    return found


@on_pg15
@seed(SEED)
@settings(
    max_examples=RUNS,
    deadline=None,
    database=None,  # a run draws from its seed only: the printed seed replays it
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each try is three runs on the bed
    # the function-scoped fixtures are the namespace, its Secrets and the session's servers; each drawn
    # password gets its own role, database, Secrets and run names, so examples share no state
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(password=passwords.PASSWORDS, forms=passwords.URL_FORMS, param=st.sampled_from(passwords.PASSWORD_PARAMETERS))
def test_no_password_or_secret_key_appears_anywhere_after_a_successful_and_a_failing_run(
    password, forms, param, app, database, s3, operator, kubelet
):
    print(f"hostile password {password!r} ({forms[0]} form, {param!r}); replay: HOSTILE_PASSWORD_SEED={SEED}")
    server, tag = database.server, secrets.token_hex(3)
    wrong_password = "Wr0ng-" + password[::-1]
    with passwords.owner(server, password) as (role, name):
        seeded(Database(name=name, url=server.url(name), server=server), revision="0003")  # the backup runs
        good_url = passwords.url(server, role, password, name, forms[0], param)
        wrong_url = passwords.url(server, role, wrong_password, name, forms[1], param)
        for secret, url in ((f"db-{tag}", good_url), (f"db-wrong-{tag}", wrong_url)):
            app.cluster.kubectl("-n", app.namespace, "create", "secret", "generic", secret,
                                f"--from-literal=DATABASE_URL={url}")  # fmt: skip
        hostile = {"database": {"urlSecretRef": {"name": f"db-{tag}"}}}
        app.apply(app.manifest(f"good-{tag}", spec=hostile))
        assert app.wait(f"good-{tag}")["status"]["phase"] == "Succeeded"
        app.apply(app.manifest(f"bad-{tag}", image="example-app:deletes-rows", spec=hostile))  # verify fails, restores
        assert app.wait(f"bad-{tag}", timeout=240)["status"]["phase"] == "RolledBack"
        # A failure whose message is built from the URL itself: a wrong password in the Secret.
        app.apply(app.manifest(f"bad-password-{tag}", spec={"database": {"urlSecretRef": {"name": f"db-wrong-{tag}"}}}))
        status = app.wait(f"bad-password-{tag}")["status"]
        assert status["phase"] == "Failed" and "authentication failed" in status["message"], status
        assert role in status["message"], "the message checked names the role: it is built from the URL"

    found = {
        what: passwords.forms(secret)
        for what, secret in (
            ("bed superuser password", database.server.password),
            ("S3 secret key", s3.secret_key),
            ("hostile database password", password),
            ("wrong database password", wrong_password),
        )
    }
    leaks = [
        f"{what} ({form!r}) in {where}"
        for where, text in _leftovers(app, operator, kubelet).items()
        for what, spellings in found.items()
        for form in spellings
        if form in text
    ]
    assert leaks == [], leaks


@pytest.mark.parametrize("pg", [15], indirect=True, ids=["pg15"])
def test_step_jobs_carry_credentials_only_as_secret_references(app, database, s3):
    app.apply(app.manifest("refs"))
    app.wait("refs")
    for job in app.jobs():
        for container in job["spec"]["template"]["spec"]["containers"]:
            for var in container.get("env") or []:
                if var["name"] in ("DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                    assert "value" not in var and "secretKeyRef" in var["valueFrom"], (job["metadata"]["name"], var)
        assert database.server.password not in json.dumps(job) and s3.secret_key not in json.dumps(job)
