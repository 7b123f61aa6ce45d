"""Safety rule 6, checked on everything an end-to-end run leaves behind: the database password and the
S3 secret key appear in no log, Event, status, Job or Pod spec, termination message or S3 result."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.faults.support import on_pg15, seeded


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
    for key in app.s3.keys(app.bucket):
        if key.endswith(".json"):
            body = app.s3.client().get_object(Bucket=app.bucket, Key=key)["Body"].read()
            found[f"s3://{app.bucket}/{key}"] = body.decode(errors="replace")
    return found


@on_pg15
def test_no_password_or_secret_key_appears_anywhere_after_a_successful_and_a_failing_run(
    app, database, s3, operator, kubelet
):
    seeded(database)
    app.apply(app.manifest("good"))
    assert app.wait("good")["status"]["phase"] == "Succeeded"
    app.apply(app.manifest("bad", image="example-app:deletes-rows"))  # verify fails, restore runs
    assert app.wait("bad", timeout=240)["status"]["phase"] == "RolledBack"
    # A failure whose message is built from the URL itself: a wrong password in the Secret.
    wrong_password = "Wr0ng-" + database.server.password[::-1]
    app.cluster.kubectl(
        "-n",
        app.namespace,
        "create",
        "secret",
        "generic",
        "db-wrong",
        f"--from-literal=DATABASE_URL={database.url_for(password=wrong_password)}",
    )
    app.apply(app.manifest("bad-password", spec={"database": {"urlSecretRef": {"name": "db-wrong"}}}))
    status = app.wait("bad-password")["status"]
    assert status["phase"] == "Failed" and "authentication failed" in status["message"], status

    secrets = {
        "database password": database.server.password,
        "S3 secret key": s3.secret_key,
        "wrong database password": wrong_password,
    }
    secrets.update({f"{k} (url-quoted)": quote(v, safe="") for k, v in list(secrets.items())})
    leaks = [
        f"{what} in {where}"
        for where, text in _leftovers(app, operator, kubelet).items()
        for what, secret in secrets.items()
        if secret in text
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
