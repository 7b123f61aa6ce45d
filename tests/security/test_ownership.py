"""Ownership on the real apiserver (issue 14, finding 5): the operator adopts only its own Jobs, and the
hook's `alembic-operator run` follows an existing run only when it asks for the same thing.

Both go through the real code paths (apiserver.create_job, the CLI) against the bed's apiserver as admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from testbed import operating, tools
from tests.security.manifests import run_manifest

CLI = str(tools.REPO / ".venv" / "bin" / "alembic-operator")


def _env(cluster) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}


def test_run_refuses_to_follow_a_run_of_its_name_with_another_spec(cluster, namespace, tmp_path):
    operating.install_crds(cluster)
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(run_manifest(namespace, "app-7", "attacker/app:1")))
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump(run_manifest(namespace, "app-7", "example-app:2.0")))
    argv = [CLI, "run", "--manifest", str(manifest), "--namespace", namespace, "--timeout-seconds", "1"]
    refused = subprocess.run(argv, capture_output=True, text=True, env=_env(cluster), timeout=60)
    assert refused.returncode != 0
    assert "already exists with another spec (spec.migrate)" in refused.stderr + refused.stdout, refused.stderr
    # The same spec (defaults filled in by the apiserver are no difference) is followed, here until the timeout.
    manifest.write_text(yaml.safe_dump(run_manifest(namespace, "app-7", "attacker/app:1")))
    followed = subprocess.run(argv, capture_output=True, text=True, env=_env(cluster), timeout=60)
    # (an operator of this bed may be running and move it on: the phase it times out in does not matter)
    assert "RunTimeout: MigrationRun app-7 still " in followed.stderr, followed.stderr
    assert "another spec" not in followed.stderr + followed.stdout
    assert "another spec" not in followed.stderr


CREATE = """
import json, sys
from alembic_operator.controller import apiserver
try:
    print(json.dumps(apiserver.create_job(namespace=sys.argv[1], manifest=json.loads(sys.argv[2]))))
except apiserver.JobNotOwned as exc:
    print(json.dumps("refused: " + str(exc)))
"""


def test_a_job_of_the_steps_name_is_adopted_only_when_the_run_controls_it(cluster, namespace):
    operating.install_crds(cluster)
    runs = []
    for name in ("mine", "other"):
        out = cluster.kubectl(
            "create", "-o", "json", "-f", "-", input=yaml.safe_dump(run_manifest(namespace, name, "a"))
        )
        runs.append(json.loads(out.stdout)["metadata"]["uid"])

    def job(owner_uid: str) -> dict:
        owner = {"apiVersion": "alembic-operator.dev/v1alpha1", "kind": "MigrationRun", "name": "x", "uid": owner_uid}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "mine-backup-1", "ownerReferences": [{**owner, "controller": True}]},
            "spec": {
                "suspend": True,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
            },
        }

    def create(manifest: dict) -> object:
        out = subprocess.run(
            [sys.executable, "-c", CREATE, namespace, json.dumps(manifest)],
            capture_output=True,
            text=True,
            env=_env(cluster),
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    mine, other = job(runs[0]), job(runs[1])
    mine["metadata"]["ownerReferences"][0]["name"] = "mine"
    other["metadata"]["ownerReferences"][0]["name"] = "other"
    assert create(other) is True  # someone else's Job takes the name first
    refused = create(mine)
    assert isinstance(refused, str) and refused.startswith("refused: Job mine-backup-1 already exists"), refused
    assert runs[1] in refused
    cluster.kubectl("-n", namespace, "delete", "job", "mine-backup-1", "--wait=true")
    assert create(mine) is True and create(mine) is False  # created, then its own Job adopted (a resume)
