"""Many runs at once: two on one database are serialised; many on as many databases all succeed in
bounded time; two operator processes at once do not run any step twice.

How many is ``CONCURRENT_RUNS``: 10 in ``make test`` (CI's budget, issue 17), 20 in ``make test-full``.
"""

from __future__ import annotations

import collections
import os
import time
from datetime import datetime

import pytest
import yaml

from testbed import faults, operating
from tests.e2e import dbstate
from tests.faults.support import on_pg15, seeded
from tests.helm import support as helm

STEP_LABEL = "alembic-operator.dev/step"
MARKER = "SELECT count(*) FROM project WHERE name = 'created-by-0005'"
MANY_RUNS = int(os.environ.get("CONCURRENT_RUNS", "10"))


def _untouched(state: dbstate.DatabaseState, *, but: set[str]) -> dict[str, str]:
    return {t: v for t, v in state.rows.items() if t not in but}


@on_pg15
@pytest.mark.fault("two runs for one database applied at once", expected="Succeeded")
def test_two_runs_on_one_database_at_once_are_serialised_and_migrate_once(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("first", image="example-app:slow"))
    app.apply(app.manifest("second", image="example-app:slow"))
    second_queued = faults.wait_for(
        "the second run to queue", lambda: faults.run_phase(app, "second") == "Queued", timeout=60, interval=0.2
    )
    first = app.wait("first", timeout=240)["status"]
    second = app.wait("second", timeout=240)["status"]
    fault.saw(second if first["phase"] == "Succeeded" else first)
    after = dbstate.capture(database)
    fault.intact(
        (_untouched(after, but={"public.project", "public.alembic_version"}), database.scalar(MARKER)),
        (_untouched(before, but={"public.project", "public.alembic_version"}), "1"),
        what="rows of every table, and the data migration's marker row once",
    )
    assert second_queued
    assert first["phase"] == "Succeeded" and second["phase"] == "Succeeded", (first, second)
    assert first["finishedAt"] <= second["steps"]["plan"]["startedAt"], (first, second)
    # the second found the database at the target the first migrated it to: it ends after its plan
    assert "backup" not in second["steps"] and "migrate" not in second["steps"], second["steps"]
    assert {c["type"]: c["reason"] for c in second["conditions"]}["Ready"] == "AlreadyAtTarget", second
    # the first run's end wakes the second at once (the queue's own re-check is every 15 s)
    started, ended = second["steps"]["plan"]["startedAt"], first["finishedAt"]
    waited = (datetime.fromisoformat(started) - datetime.fromisoformat(ended)).total_seconds()
    assert waited <= 5, f"the second run started {waited:.0f} s after the first ended: at a re-check, not on its end"
    assert second["fromRevision"] == second["toRevision"] == "0005", second


@on_pg15
@pytest.mark.fault(f"{MANY_RUNS} runs on {MANY_RUNS} databases at once (bound: 360 s)", expected="Succeeded")
def test_many_runs_on_as_many_databases_all_succeed_in_bounded_time(app, database, fault):
    server = database.server
    names = [server.create_database() for _ in range(MANY_RUNS)]
    try:
        for i, name in enumerate(names):
            app.cluster.kubectl(
                "-n",
                app.namespace,
                "create",
                "secret",
                "generic",
                f"db-{i}",
                f"--from-literal=DATABASE_URL={server.url(name)}",
            )
        manifests = [
            app.manifest(f"many-{i}", spec={"database": {"urlSecretRef": {"name": f"db-{i}"}}})
            for i in range(MANY_RUNS)
        ]
        started = time.monotonic()
        app.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        statuses = [
            app.wait(f"many-{i}", timeout=max(10.0, 360 - (time.monotonic() - started)))["status"]
            for i in range(MANY_RUNS)
        ]
        took = time.monotonic() - started
        fault.note(f"all {MANY_RUNS} ended in {took:.0f}s")
        phases = collections.Counter(s["phase"] for s in statuses)
        fault.saw(
            "Succeeded" if phases == {"Succeeded": MANY_RUNS} else ",".join(f"{n}x{p}" for p, n in phases.items())
        )
        revisions = [server.scalar("SELECT version_num FROM alembic_version", name) for name in names]
        fault.intact(
            (revisions, [s.get("rowCounts", {}).get("violations", []) for s in statuses]),
            (["0004"] * MANY_RUNS, [[]] * MANY_RUNS),
            what="every database at 0004 with no row lost",
        )
        assert phases == {"Succeeded": MANY_RUNS}, [(i, s["phase"], s.get("message")) for i, s in enumerate(statuses)]
        assert took < 360
    finally:
        for name in names:
            server.drop_database(name)


@on_pg15
@pytest.mark.fault(
    "two operator processes at once (no peering; the chart pins 1 replica, Recreate)", expected="Succeeded"
)
def test_two_operators_at_once_never_run_a_step_twice_and_the_chart_runs_only_one(
    app, database, operator, bed_dir, fault
):
    rendered = list(yaml.safe_load_all(helm.template(helm.OPERATOR_CHART).stdout))
    deployment = next(d for d in rendered if d and d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    refused = helm.template(helm.OPERATOR_CHART, "--set", "replicaCount=2", check=False)
    assert refused.returncode != 0 and "replicaCount" in refused.stderr, refused.stderr

    seeded(database)
    before = dbstate.capture(database)
    second = operating.OperatorProcess(app.cluster, bed_dir / "operator-second", settings=operator.settings)
    second.workdir.mkdir(parents=True, exist_ok=True)
    second.kubeconfig = operator.kubeconfig
    second.start()
    try:
        app.apply(app.manifest("two-operators", image="example-app:slow"))
        status = app.wait("two-operators", timeout=240)["status"]
        assert second.server is not None and second.server.alive(), "the second operator died"
    finally:
        second.stop()
    fault.saw(status)
    per_step = collections.Counter(j["metadata"]["labels"][STEP_LABEL] for j in app.jobs())
    after = dbstate.capture(database)
    fault.intact(
        (_untouched(after, but={"public.project", "public.alembic_version"}), database.scalar(MARKER)),
        (_untouched(before, but={"public.project", "public.alembic_version"}), "1"),
        what="rows of every table, and the data migration's marker row once",
    )
    assert status["phase"] == "Succeeded", status
    assert all(n == 1 for n in per_step.values()), per_step
    fault.note("both operators act (Kopf standalone); deterministic Job names make the second create a no-op")
