"""At most ``maxRunningRuns`` runs run a step at once: the rest wait Queued, oldest first, and each starts
as soon as a running one ends.

Issue 18: 100 runs on 100 databases put ~82 step containers on a 2-core node at once; each got ~1% of a
CPU and 66 plan steps ran past their Job's deadline. The operator is restarted with
ALEMBIC_OPERATOR_MAX_RUNNING_RUNS=1 for this test and with the bed's settings after it.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime

import yaml

from testbed import faults

RUNS = 3


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_runs_past_the_limit_queue_saying_why_and_start_one_by_one_as_slots_free(app, database, operator):
    server = database.server
    names = [server.create_database() for _ in range(RUNS - 1)]
    operator.stop()
    operator.start({"ALEMBIC_OPERATOR_MAX_RUNNING_RUNS": "1"})
    try:
        secrets = [None]
        for i, name in enumerate(names):
            url = f"--from-literal=DATABASE_URL={server.url(name)}"
            app.cluster.kubectl("-n", app.namespace, "create", "secret", "generic", f"limit-db-{i}", url)
            secrets.append(f"limit-db-{i}")
        manifests = [
            app.manifest(f"limited-{i}", spec={"database": {"urlSecretRef": {"name": secret}}} if secret else None)
            for i, secret in enumerate(secrets)
        ]
        app.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        queued = faults.wait_for(
            "a run queued for the limit",
            lambda: next(
                (
                    s
                    for i in range(RUNS)
                    if (s := app.get(f"limited-{i}").get("status") or {}).get("queue", {}).get("limit") == 1
                ),
                None,
            ),
            timeout=60,
            interval=0.2,
        )
        assert queued["phase"] == "Queued" and "(maxRunningRuns: 1)" in queued["message"], queued
        statuses = [app.wait(f"limited-{i}", timeout=300)["status"] for i in range(RUNS)]
        assert [s["phase"] for s in statuses] == ["Succeeded"] * RUNS, [
            (s["phase"], s.get("message")) for s in statuses
        ]

        spans = sorted((_at(s["steps"]["plan"]["startedAt"]), _at(s["finishedAt"])) for s in statuses)
        for (_, ended), (started, _) in itertools.pairwise(spans):
            assert started >= ended, f"two runs ran at once with a limit of 1: {spans}"
            # woken by the end of the one before, not at its 15 s re-check
            assert (started - ended).total_seconds() <= 5, spans

        events = json.loads(app.cluster.kubectl("-n", app.namespace, "get", "events", "-o", "json").stdout)["items"]
        said = [e["message"] for e in events if e.get("reason") == "Queued" and "maxRunningRuns" in e["message"]]
        assert said, "no Queued event named the limit"
    finally:
        operator.stop()
        operator.start()
        for name in names:
            server.drop_database(name)
