"""The operator's API door (controller/apiserver.py) against the bed's real apiserver.

The door is plain JSON over urllib3 (the official client's models cost the operator ~40 MiB), so what
the official client did for us is checked here: errors carry the apiserver's message, a run that is
gone is ``None``, and a status written over a version of the run that is no longer current is refused
(a decision made from a lagging watch must not overwrite a newer status: issue 18's 1,000-run trial).
Each call runs in a fresh interpreter with the bed's KUBECONFIG, as the operator process would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from testbed import operating
from tests.security.manifests import run_manifest

CALL = """
import json, sys
from alembic_operator.controller import main
main.skip_model_clients()
from alembic_operator.controller import apiserver
name, kwargs = sys.argv[1], json.loads(sys.argv[2])
try:
    print(json.dumps({"ok": getattr(apiserver, name)(**kwargs)}))
except (apiserver.ApiError, apiserver.Conflict, apiserver.JobRejected) as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
print(json.dumps({"kubernetes_loaded": sys.modules.get("kubernetes") is not None}))
"""


def call(cluster, function: str, **kwargs: object) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CALL, function, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    answer, imports = (json.loads(line) for line in out.stdout.splitlines())
    assert imports == {"kubernetes_loaded": False}
    return dict(answer)


def create_run(cluster, namespace: str, name: str) -> dict:
    manifest = yaml.safe_dump(run_manifest(namespace, name, "app:1"))
    return dict(json.loads(cluster.kubectl("create", "-o", "json", "-f", "-", input=manifest).stdout))


def test_a_status_over_a_version_that_is_no_longer_current_is_refused_and_changes_nothing(cluster, namespace):
    """An operator of the bed may be reconciling the run too: only our own marker's fate is asserted."""
    operating.install_crds(cluster)
    created = create_run(cluster, namespace, "r1")
    old = created["metadata"]["resourceVersion"]
    cluster.kubectl("-n", namespace, "annotate", "mrun", "r1", "door-test=moved")  # a newer version
    stale = call(cluster, "patch_run_status", namespace=namespace, name="r1", status={"message": "stale-marker"},
                 resource_version=old)  # fmt: skip
    assert stale["error"] == "Conflict", stale
    assert "modified" in stale["message"], stale
    stored = call(cluster, "get_run", namespace=namespace, name="r1")["ok"]
    assert (stored.get("status") or {}).get("message") != "stale-marker"
    for _ in range(5):  # over the version just read it is written (unless an operator wrote in between)
        current = call(cluster, "get_run", namespace=namespace, name="r1")["ok"]["metadata"]["resourceVersion"]
        fresh = call(cluster, "patch_run_status", namespace=namespace, name="r1", status={"message": "fresh-marker"},
                     resource_version=current)  # fmt: skip
        if "ok" in fresh:
            break
    assert fresh["ok"]["status"]["message"] == "fresh-marker", fresh
    assert fresh["ok"]["metadata"]["resourceVersion"] != current


def test_a_run_that_is_gone_reads_and_patches_as_none(cluster, namespace):
    operating.install_crds(cluster)
    assert call(cluster, "get_run", namespace=namespace, name="absent") == {"ok": None}
    assert call(cluster, "patch_run_status", namespace=namespace, name="absent", status={"phase": "x"}) == {"ok": None}


def test_an_invalid_job_is_rejected_with_the_apiservers_reason(cluster, namespace):
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bad-plan-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "x"}]}}},
    }
    refused = call(cluster, "create_job", namespace=namespace, manifest=job)
    assert refused["error"] == "JobRejected", refused
    assert "restartPolicy" in refused["message"], refused


def test_an_event_about_a_run_is_posted(cluster, namespace):
    operating.install_crds(cluster)
    created = create_run(cluster, namespace, "r2")
    assert call(cluster, "emit_event", run=created, type_="Normal", reason="DoorTest", message="hello") == {"ok": None}
    events = json.loads(cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout)["items"]
    [event] = [e for e in events if e["involvedObject"]["name"] == "r2" and e["reason"] == "DoorTest"]
    assert (event["message"], event["type"], event["source"]["component"]) == ("hello", "Normal", "alembic-operator")
    assert event["involvedObject"]["uid"] == created["metadata"]["uid"]
