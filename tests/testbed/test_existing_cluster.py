"""The end-to-end suites against an existing cluster (testbed/existing.py), proven on a running bed.

A bed of this test's own (its own network namespace, control plane and node) stands in for the
user's cluster. The test does what the README tells a user to do — `python -m testbed.existing
export DIR`, load the archives into the cluster's container runtime (here `ctr images import` on the
bed's node, what `kind load image-archive` does) — then runs one Helm e2e test and one operator e2e
test in a child pytest with the opt-in pointing at the bed's kubeconfig. The child must use that
cluster: it starts no apiserver and no node of its own (its log and the cluster's objects say so).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import existing, netns, operating, tools
from testbed.node import NodeBed

# Only in `make test-full` (CI's budget, issue 17): it boots a second whole bed next to the worker's own
# (~95 s of a worker, and that bed's CPU taken from the others) to prove an opt-in path `make test`'s own
# bed does not use.
pytestmark = [pytest.mark.timeout(1200), pytest.mark.full]

CHILD_TESTS = [
    # the chart's operator (its image, in-cluster config) reconciles the README's run to Succeeded
    "tests/helm/test_operator_e2e.py::test_kubectl_applied_run_succeeds_and_its_statuses_classify_right",
    # the operator as a local process, a step Job per phase on the cluster's node, up to the restore
    "tests/e2e/test_lifecycle.py::test_a_migration_that_deletes_rows_is_rolled_back_with_every_row_back[pg15]",
]


@pytest.fixture(scope="module")
def users_cluster() -> Iterator[NodeBed]:
    """Someone's running cluster (a bed of its own), with the suites' images loaded into its node."""
    workdir = Path(tempfile.mkdtemp(prefix="alembic-operator-bed-", dir="/tmp"))
    bed = NodeBed(workdir).start()
    try:
        assert bed.node is not None
        for archive in existing.export(workdir / "exported"):
            bed.node.import_image(archive)
        yield bed
    finally:
        left = bed.stop()
        assert not left, left


def counters(bed: NodeBed) -> dict[str, float]:
    """MigrationRuns and Jobs created on the bed's apiserver, pods its kubelet started."""
    assert bed.cluster is not None and bed.node is not None
    api = bed.cluster.kubectl("get", "--raw", "/metrics").stdout
    kubelet = bed.cluster.kubectl("get", "--raw", f"/api/v1/nodes/{bed.node.name}/proxy/metrics").stdout
    return {
        "runs": operating.metric_sum(api, "apiserver_request_total", resource="migrationruns", verb="POST", code="201"),
        "jobs": operating.metric_sum(api, "apiserver_request_total", resource="jobs", verb="POST", code="201"),
        "pods": operating.metric_sum(kubelet, "kubelet_started_pods_total"),
    }


def test_the_opt_in_runs_the_operator_and_helm_suites_on_the_existing_cluster(users_cluster: NodeBed) -> None:
    assert users_cluster.cluster is not None and users_cluster.node is not None
    kubeconfig = users_cluster.cluster.kubeconfig
    env = {
        **os.environ,
        existing.EXISTING_ENV: "yes",
        existing.KUBECONFIG_ENV: str(kubeconfig),
        existing.SERVICE_HOST_ENV: netns.NODE_IP,  # where this bed's pods reach this machine's servers
    }
    before = counters(users_cluster)
    started = time.monotonic()
    # The child inherits this thread's network namespace (the bed's), as a user's shell reaches its cluster.
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *CHILD_TESTS],
        cwd=tools.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    print(f"\n[existing cluster] child pytest: {time.monotonic() - started:.0f} s")
    out = child.stdout + child.stderr
    assert child.returncode == 0, out[-8000:]
    assert "2 passed" in out, out[-4000:]
    # The runs happened on the user's cluster: its apiserver counted their creation and its node
    # started their pods (had the child started a bed of its own, neither would have risen).
    after = counters(users_cluster)
    assert after["runs"] - before["runs"] >= 2, (before, after)
    assert after["jobs"] - before["jobs"] >= 9, (before, after)  # 4 steps of one run, 5 (with the restore) of the other
    assert after["pods"] - before["pods"] >= 10, (before, after)  # each step's pod and the chart's operator


def test_half_an_opt_in_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Either variable alone is an error, never a silent fall-back to (or away from) the bed."""
    monkeypatch.delenv(existing.EXISTING_ENV, raising=False)
    monkeypatch.setenv(existing.KUBECONFIG_ENV, str(tmp_path / "kubeconfig"))
    with pytest.raises(RuntimeError, match="set both"):
        existing.requested()
    monkeypatch.setenv(existing.EXISTING_ENV, "yes")
    with pytest.raises(RuntimeError, match="no such file"):
        existing.requested()
    monkeypatch.delenv(existing.KUBECONFIG_ENV)
    with pytest.raises(RuntimeError, match="set both"):
        existing.requested()
    monkeypatch.delenv(existing.EXISTING_ENV)
    assert existing.requested() is None
