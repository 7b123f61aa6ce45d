"""Operator overhead: one whole MigrationRun on the test bed vs the sum of its steps run by hand.

The run (plan → backup → migrate → verify) migrates a small example database
from revision 0003 to head. A watcher timestamps every Job, Pod and run event
on arrival (one clock), giving:

- reconcile latency: run created → first Job created, and each Job complete
  (as the watcher saw the Job's Complete condition) → next Job created; also
  from the step's Pod finishing (the operator watches Pods too);
- the last Job complete → the run's Succeeded status seen (the final status write);
- status writes per run (PATCH …/migrationruns/{name}/status counted in the operator);
- each Job's span (created → complete) against the same step's command run
  by hand (same argv and env, read back from the Job, on an identical copy of
  the database made with CREATE DATABASE … TEMPLATE before the run).

Operator overhead = run wall − Σ steps by hand; it includes the node's pod
start-up (containerd, runc, image config) and the Job controller, which are
shown separately where they can be. Orchestration (issue 18) = run wall − the
time the step containers ran, as the node reports it (:mod:`bench.orchestration`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes.client

from bench import orchestration, taskevents, watching
from bench.bed import Bed
from bench.common import loadavg, median, table, timed
from testbed import tools
from testbed.apps import App

EXAMPLE = Path(__file__).resolve().parents[1] / "alembic" / "example"
SEED_ROWS = 20_000
STEPS = ("plan", "backup", "migrate", "verify")


def prepare_database(b: Bed, name: str, *, rows: int = SEED_ROWS) -> str:
    """A database at revision 0003 with ``rows`` tasks (head is 0004: one index to build)."""
    db = b.pg.create_database(name)
    env = {**os.environ, "DATABASE_URL": b.pg.url(db)}
    alembic = str(Path(sys.executable).with_name("alembic"))
    subprocess.run([alembic, "upgrade", "0003"], cwd=EXAMPLE, env=env, check=True, capture_output=True)
    if rows:
        subprocess.run(
            [sys.executable, "-m", "taskapp.seed", "--rows", str(rows)],
            cwd=EXAMPLE,
            env=env,
            check=True,
            capture_output=True,
        )
    return db


def api_counts(b: Bed) -> dict[str, Any]:
    assert b.api_counts is not None
    time.sleep(1.2)  # the counter writes its file once a second
    try:
        return json.loads(b.api_counts.read_text())
    except (OSError, ValueError):
        return {"total": 0, "requests": {}}


def diff_counts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    keys = set(before.get("requests", {})) | set(after.get("requests", {}))
    out = {k: after.get("requests", {}).get(k, 0) - before.get("requests", {}).get(k, 0) for k in keys}
    return {k: v for k, v in sorted(out.items()) if v}


def create_run(b: Bed, manifest: dict[str, Any]) -> float:
    """Create the MigrationRun with the API (no kubectl start-up in the measurement); its send time."""
    assert b.cluster is not None
    with b.cluster.api_client() as api:
        at = time.time()
        kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
            watching.GROUP, watching.VERSION, manifest["metadata"]["namespace"], watching.PLURAL, manifest
        )
    return at


def timeline(events: list[watching.Event], run_name: str, created_at: float) -> dict[str, Any]:
    """Per step: Job created, Pod finished, Job complete (watcher clock); run terminal time."""
    steps: dict[str, dict[str, float]] = {}
    run_done = None
    phases: list[tuple[float, str]] = []
    status_events = 0
    for ev in events:
        labels = ev.obj["metadata"].get("labels") or {}
        step = labels.get("alembic-operator.dev/step")
        if ev.kind == "run" and ev.name == run_name:
            status_events += ev.type == "MODIFIED"
            phase = (ev.obj.get("status") or {}).get("phase")
            if phase and (not phases or phases[-1][1] != phase):
                phases.append((ev.at, phase))
            if phase in ("Succeeded", "Failed", "RolledBack", "RollbackFailed") and run_done is None:
                run_done = ev.at
            continue
        if not step:
            continue
        s = steps.setdefault(step, {})
        if ev.kind == "job":
            if ev.type == "ADDED":
                s.setdefault("job_created", ev.at)
            if watching.job_complete(ev.obj):
                s.setdefault("job_complete", ev.at)
        elif ev.kind == "pod":
            if ev.type == "ADDED":
                s.setdefault("pod_created", ev.at)
            if (ev.obj.get("status") or {}).get("phase") == "Running":
                s.setdefault("pod_running", ev.at)
            if watching.pod_finished(ev.obj):
                s.setdefault("pod_finished", ev.at)
    ordered = sorted(steps.items(), key=lambda kv: kv[1].get("job_created", 1e18))
    latencies, from_pod = [], []
    prev = None
    for _step, s in ordered:
        if prev is None:
            s["reconcile_latency"] = s["job_created"] - created_at
        else:
            if "job_complete" in prev:
                s["reconcile_latency"] = s["job_created"] - prev["job_complete"]
            if "pod_finished" in prev:
                s["latency_from_pod_finished"] = s["job_created"] - prev["pod_finished"]
                from_pod.append(s["latency_from_pod_finished"])
        if "reconcile_latency" in s:
            latencies.append(s["reconcile_latency"])
        prev = s
    final_status = (run_done - prev["job_complete"]) if (run_done and prev and "job_complete" in prev) else None
    return {
        "steps": {
            k: {
                kk: round(
                    vv
                    - (
                        created_at
                        if kk in ("job_created", "job_complete", "pod_created", "pod_running", "pod_finished")
                        else 0
                    ),
                    3,
                )
                for kk, vv in v.items()
            }
            for k, v in ordered
        },
        "order": [k for k, _ in ordered],
        "latencies": [round(x, 3) for x in latencies],
        "latencies_from_pod_finished": [round(x, 3) for x in from_pod],
        "final_status_latency": round(final_status, 3) if final_status is not None else None,
        "run_wall": round(run_done - created_at, 3) if run_done else None,
        "phases": [(round(t - created_at, 3), p) for t, p in phases],
        "run_modified_events": status_events,
    }


def replay_steps(
    b: Bed,
    jobs: list[dict[str, Any]],
    *,
    secrets: dict[tuple[str, str], str],
    url_from: str,
    url_to: str,
    run_name: str,
    workdir: Path,
) -> dict[str, float]:
    """Run each Job's container command locally, as its pod would, against the copy of the database."""
    from bench.bed import BY_HAND_IMAGES

    images = BY_HAND_IMAGES
    out: dict[str, float] = {}
    for job in sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"]):
        step = job["metadata"]["labels"]["alembic-operator.dev/step"]
        c = job["spec"]["template"]["spec"]["containers"][0]
        image = images.get(c["image"]) or images.get(c["image"].split(":")[0]) or {}
        env = {**os.environ}
        for k, v in (image.get("env") or {}).items():
            env[k] = v.replace("$PATH", os.environ.get("PATH", ""))
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "secretKeyRef" in (e.get("valueFrom") or {}):
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = secrets[(ref["name"], ref["key"])]
        env["DATABASE_URL"] = env["DATABASE_URL"].replace(url_from, url_to)

        # A fresh run folder: the run's own would hold its manifest, and backup would keep it and return.
        def fresh(text: str) -> str:
            return text.replace(f"/{run_name}-", f"/{run_name}-byhand-") if text.startswith("s3://") else text

        if "ALEMBIC_OPERATOR_LOCATION" in env:
            env["ALEMBIC_OPERATOR_LOCATION"] = fresh(env["ALEMBIC_OPERATOR_LOCATION"])
        env["TMPDIR"] = env["HOME"] = str(workdir)
        argv = list(c.get("command") or image.get("entrypoint") or []) + list(c.get("args") or image.get("args") or [])
        argv = [fresh(a) for a in argv]
        assert not any(a.startswith("s3://") and f"/{run_name}-byhand-" not in a for a in argv), argv
        cwd = c.get("workingDir") or image.get("workingDir") or str(workdir)
        out[step] = round(timed(argv, env=env, cwd=cwd), 3)
    return out


def run(b: Bed) -> dict[str, Any]:
    assert b.cluster is not None
    ns = "overhead"
    b.cluster.kubectl("create", "namespace", ns)
    db = prepare_database(b, "ovh")
    b.pg.execute("CREATE DATABASE ovh_byhand TEMPLATE ovh")
    app = App(cluster=b.cluster, namespace=ns, database_url=b.pg.url(db), s3=b.s3, bucket=b.s3.create_bucket("ovh"))
    app.create_secrets()
    # The ServiceAccount controller must have made "default" before pods can be admitted.
    for _ in range(100):
        if b.cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0:
            break
        time.sleep(0.2)
    recorder = watching.Recorder(b.cluster, ns).start()
    assert b.kubelet is not None
    tasks = taskevents.Subscription(ctr=tools.containerd_binary("ctr"), socket=b.kubelet.socket).start()
    counts_before = api_counts(b)
    name = "ovh-1"
    load = loadavg()
    created = create_run(b, app.manifest(name))
    deadline = time.time() + 300
    while time.time() < deadline:
        tl = timeline(recorder.snapshot(), name, created)
        if tl["run_wall"] is not None:
            break
        time.sleep(0.2)
    # The run ends on its last Pod's end, before the Job controller marks that Job: watch until it has.
    settle = time.time() + 30
    while time.time() < settle and not all("job_complete" in v for v in tl["steps"].values()):
        time.sleep(0.2)
        tl = timeline(recorder.snapshot(), name, created)
    time.sleep(0.5)
    recorder.stop()
    task_lines = tasks.stop()
    counts_after = api_counts(b)
    tl = timeline(recorder.snapshot(), name, created)
    phase = app.get(name)["status"]["phase"]
    jobs = app.jobs()
    for _ in range(30):  # the operator moved on at each Pod's end: its Jobs must still end Complete
        if all(_complete(j) for j in jobs):
            break
        time.sleep(1.0)
        jobs = app.jobs()
    secrets = {
        ("db", "DATABASE_URL"): b.pg.url(db),
        ("s3", "AWS_ACCESS_KEY_ID"): b.s3.access_key,
        ("s3", "AWS_SECRET_ACCESS_KEY"): b.s3.secret_key,
    }
    work = b.workdir / "byhand"
    work.mkdir(exist_ok=True)
    by_hand = replay_steps(
        b, jobs, secrets=secrets, url_from=f"/{db}", url_to="/ovh_byhand", run_name=name, workdir=work
    )
    requests = diff_counts(counts_before, counts_after)
    status_writes = sum(v for k, v in requests.items() if k.startswith("PATCH") and k.endswith("/status"))
    job_spans = {
        s: round(v["job_complete"] - v["job_created"], 3)
        for s, v in tl["steps"].items()
        if "job_complete" in v and "job_created" in v
    }
    pod_spans = {
        s: round(v["pod_finished"] - v["pod_running"], 3)
        for s, v in tl["steps"].items()
        if "pod_finished" in v and "pod_running" in v
    }
    total_hand = round(sum(by_hand.values()), 3)
    pods = json.loads(b.cluster.kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    spans = orchestration.container_spans(pods)
    task_times = taskevents.times(task_lines, pods)
    precise = taskevents.spans(task_times)
    for step, (start, end) in task_times.items():  # containerd's clock is this machine's, as the watcher's
        tl["steps"][step]["container_started"] = round(start - created, 3)
        tl["steps"][step]["container_exited"] = round(end - created, 3)
    if set(precise) != set(spans):
        raise RuntimeError(f"containerd's task events name steps {sorted(precise)}, the Pods {sorted(spans)}")
    return {
        "jobs_complete": f"{sum(_complete(j) for j in jobs)}/{len(jobs)}",
        "container_spans": {k: round(v, 2) for k, v in spans.items()},
        "container_spans_precise": {k: round(v, 3) for k, v in precise.items()},
        "startup_spans": {k: round(v, 2) for k, v in orchestration.startup_spans(jobs, pods).items()},
        "orchestration": orchestration.orchestration(tl["run_wall"], precise),
        "orchestration_1s": orchestration.orchestration(tl["run_wall"], spans),
        "io": orchestration.reads_and_writes(requests, 1),
        "phase": phase,
        "timeline": tl,
        "by_hand": by_hand,
        "sum_by_hand": total_hand,
        "job_spans": job_spans,
        "pod_running_spans": pod_spans,
        "load_before": load,
        "overhead_s": round(tl["run_wall"] - total_hand, 3) if tl["run_wall"] else None,
        "reconcile_latency_median": round(median(tl["latencies"]), 3),
        "reconcile_latency_max": max(tl["latencies"]) if tl["latencies"] else None,
        "api_requests": requests,
        "api_requests_total": sum(requests.values()),
        "status_writes": status_writes,
        "seed_rows": SEED_ROWS,
    }


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _precise_rows(tl: dict[str, Any]) -> list[list[str]]:
    """Where the rest goes, step by step, from containerd's task times and the watcher's clock."""
    steps, order = tl["steps"], tl["order"]
    started = ", ".join(
        f"{k} {v['container_started'] - v['job_created']:.2f}" for k, v in steps.items() if "container_started" in v
    )
    moved_on = []
    for i, step in enumerate(order):
        exited = steps[step].get("container_exited")
        then = steps[order[i + 1]].get("job_created") if i + 1 < len(order) else tl["run_wall"]
        if exited is not None and then is not None:
            moved_on.append(f"{step} {then - exited:.2f}")
    return [
        ["of the rest, Job created → its container started (Job controller, scheduler, kubelet, runc; s)", started],
        [
            "of the rest, container exited → next Job created / last: run's end seen (kubelet, watch, operator; s)",
            ", ".join(moved_on),
        ],
    ]


def _complete(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def render(d: dict[str, Any]) -> str:
    tl = d["timeline"]
    rows = []
    for step in tl["order"]:
        s = tl["steps"][step]
        rows.append(
            [
                step,
                f"{s.get('reconcile_latency', float('nan')):.2f}",
                f"{s['latency_from_pod_finished']:.2f}" if "latency_from_pod_finished" in s else "—",
                f"{d['job_spans'].get(step, float('nan')):.2f}",
                f"{d['pod_running_spans'].get(step, float('nan')):.2f}",
                f"{d['by_hand'].get(step, float('nan')):.2f}",
            ]
        )
    rows.append(
        [
            "**whole run**",
            f"median **{d['reconcile_latency_median']:.2f}**",
            "",
            f"{tl['run_wall']:.2f}",
            "",
            f"{d['sum_by_hand']:.2f}",
        ]
    )
    text = table(
        f"Operator overhead: one MigrationRun ({d['seed_rows']:,} tasks, 0003 → head) vs its steps by hand (seconds)",
        [
            "step",
            "reconcile latency (previous Job complete → this Job created; first: run created)",
            "… from previous Pod finished",
            "Job created → complete",
            "Pod running → finished",
            "same command by hand",
        ],
        rows,
    )
    text += (
        f"\nRun wall {tl['run_wall']:.2f} s − steps by hand {d['sum_by_hand']:.2f} s = "
        f"**{d['overhead_s']:.2f} s** of orchestration (Job controller, the node's pod start-up and "
        f"status write-back, reconcile latency, status writes). Last Job complete → run Succeeded seen: "
        f"{_seconds(tl['final_status_latency'])}. Status writes (PATCH …/status): {d['status_writes']}; "
        f"API requests by the operator for this run: {d['api_requests_total']}.\n"
    )
    if "orchestration" in d:  # issue 18 rows (results from before them lack these)
        o = d["orchestration"]
        precise = d.get("container_spans_precise")  # containerd's task events; earlier results: Pod status only
        spans = ", ".join(f"{k} {v:.2f}" for k, v in (precise or d["container_spans"]).items())
        source = "containerd's task events" if precise else "node's timestamps, 1 s resolution"
        text += table(
            "Orchestration of that run on the bed's node (issue 18: ≤ 1 s per step)",
            ["measure", "value"],
            [
                [f"run wall − step containers' time ({source})", f"{o['orchestration_s']} s"],
                ["… per step", f"**{o['per_step_s']} s**"],
                [f"step containers ran ({source}, s)", spans],
                *(
                    [["… per step from the Pods' 1 s timestamps instead", f"{d['orchestration_1s']['per_step_s']} s"]]
                    if precise
                    else []
                ),
                [
                    "step Jobs Complete after the run (the operator moved on at each Pod's end)",
                    d.get("jobs_complete", "—"),
                ],
                *(
                    _precise_rows(tl)
                    if precise
                    else [
                        [
                            "of the rest, Job created → its container started (Job controller, scheduler, kubelet; s)",
                            ", ".join(f"{k} {v:.0f}" for k, v in d.get("startup_spans", {}).items()),
                        ]
                    ]
                ),
                [
                    "step Pod's phase ended → next Job created (< 0: acted on the container's end first; s)",
                    ", ".join(
                        f"{k} {v['latency_from_pod_finished']:.2f}"
                        for k, v in tl["steps"].items()
                        if "latency_from_pod_finished" in v
                    ),
                ],
                [
                    "reads (GET/LIST, watches excluded) / writes by the operator",
                    f"{d['io']['reads_per_run']} / " + orchestration.describe_writes(d["io"]),
                ],
            ],
        )
    return text
