"""Scale: N MigrationRuns over D small databases (D = N unless ``--scale-databases``), applied at once.

Each database is a copy (CREATE DATABASE … TEMPLATE) of a small example
database at revision 0003 with its own Secret; runs on one database queue and
go one after the other. Each run goes plan → backup → migrate → verify (4 Jobs,
4 pods on the bed's node). Measured:

- time from the first create to all runs Succeeded (every run must);
- the operator's peak RSS: VmHWM of its process, restarted just before so the
  peak belongs to this benchmark (plus VmRSS sampled each second);
- Kubernetes API requests made by the operator, per run (counted in the
  operator process by bench/apicount/sitecustomize.py, by verb and resource);
- reconcile latencies of all runs (watch events, as in the overhead benchmark), median, p95,
  p99, from the Job's Complete and from its Pod's end (what the operator acts on, issue 18);
- reads and writes per run (:func:`bench.orchestration.reads_and_writes`);
- with ``--tracemalloc``, the operator's top allocation sites at its traced peak
  (bench/apicount/sitecustomize.py; tracing costs memory, so the RSS of such a run is not the product's).
"""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import kubernetes.client

from alembic_operator.api import constants
from bench import orchestration, overhead, watching
from bench.bed import Bed, vm_hwm_kb
from bench.common import loadavg, median, table
from testbed.apps import TERMINAL, App


def run(b: Bed, *, runs: int, timeout: float, databases: int | None = None) -> dict[str, Any]:
    assert b.cluster is not None
    ns = "scale"
    b.cluster.kubectl("create", "namespace", ns)
    template = overhead.prepare_database(b, "scale_tmpl", rows=200)
    dbs = []
    for i in range(min(databases or runs, runs)):
        b.pg.execute(f"CREATE DATABASE scale_{i} TEMPLATE {template}")
        dbs.append(f"scale_{i}")
    bucket = b.s3.create_bucket("scale")
    app = App(cluster=b.cluster, namespace=ns, database_url=b.pg.url(dbs[0]), s3=b.s3, bucket=bucket)
    app.create_secrets()
    with b.cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        for i, db in enumerate(dbs):
            core.create_namespaced_secret(
                ns,
                kubernetes.client.V1Secret(
                    metadata=kubernetes.client.V1ObjectMeta(name=f"db-{i}"),
                    data={"DATABASE_URL": base64.b64encode(b.pg.url(db).encode()).decode()},
                ),
            )
    for _ in range(100):
        if b.cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0:
            break
        time.sleep(0.2)

    b.restart_operator()  # a fresh process: its VmHWM is this benchmark's peak
    time.sleep(2)
    pid = b.operator_pid()
    rss_idle = vm_hwm_kb(pid)
    recorder = watching.Recorder(b.cluster, ns).start()
    counts_before = overhead.api_counts(b)
    load = loadavg()
    names = [f"scale-{i}" for i in range(runs)]
    created: dict[str, float] = {}
    started = time.time()
    for i, name in enumerate(names):
        secret = f"db-{i % len(dbs)}"
        manifest = app.manifest(name, spec={"database": {"urlSecretRef": {"name": secret, "key": "DATABASE_URL"}}})
        created[name] = overhead.create_run(b, manifest)
    applied = time.time() - started
    samples: list[tuple[float, int]] = []
    phases: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    done_at = None
    with b.cluster.api_client() as api:
        custom = kubernetes.client.CustomObjectsApi(api)
        while time.time() - started < timeout:
            items = custom.list_namespaced_custom_object(watching.GROUP, watching.VERSION, ns, watching.PLURAL)["items"]
            phases = {it["metadata"]["name"]: (it.get("status") or {}).get("phase") or "Pending" for it in items}
            samples.append((round(time.time() - started, 1), vm_hwm_kb(pid).get("VmRSS", 0)))
            if len(phases) == runs and all(p in TERMINAL for p in phases.values()):
                done_at = time.time()
                break
            time.sleep(max(1.0, runs / 250))  # the LIST of every run is the benchmark's load, not the operator's
    # why a run did not succeed, kept in the results: the bed (and the operator's log) is gone after
    failures = {
        it["metadata"]["name"]: (it.get("status") or {}).get("message")
        for it in items
        if phases[it["metadata"]["name"]] in TERMINAL - {"Succeeded"}
    }
    evidence = {name: _evidence(b, ns, name, items) for name in failures}
    hwm = vm_hwm_kb(pid)
    time.sleep(1.5)
    recorder.stop()
    counts_after = overhead.api_counts(b)
    requests = overhead.diff_counts(counts_before, counts_after)
    events = recorder.snapshot()
    latencies, first, finals, from_pod = [], [], [], []
    by_run: dict[str, list[watching.Event]] = {}
    for ev in events:
        label = (ev.obj["metadata"].get("labels") or {}).get("alembic-operator.dev/run")
        key = ev.name if ev.kind == "run" else label
        if key:
            by_run.setdefault(key, []).append(ev)
    for name in names:
        tl = overhead.timeline(by_run.get(name, []), name, created[name])
        if tl["latencies"]:
            first.append(tl["latencies"][0])
            latencies.extend(tl["latencies"][1:])
        from_pod.extend(tl["latencies_from_pod_finished"])
        if tl["final_status_latency"] is not None:
            finals.append(tl["final_status_latency"])
    server = server_latencies(b, ns, names, events)
    summary_phases: dict[str, int] = {}
    for p in phases.values():
        summary_phases[p] = summary_phases.get(p, 0) + 1
    total_requests = sum(requests.values())
    return {
        "runs": runs,
        "databases": len(dbs),
        "io": orchestration.reads_and_writes(requests, runs),
        "step_latency_p99": orchestration.percentile(latencies, 99),
        "pod_latency_median": round(median(from_pod), 3) if from_pod else None,
        "pod_latency_p99": orchestration.percentile(from_pod, 99),
        "tracemalloc": b.tracemalloc_top(),
        "applied_s": round(applied, 2),
        "all_terminal_s": round(done_at - started, 1) if done_at else None,
        "timed_out": done_at is None,
        "phases": summary_phases,
        "succeeded": summary_phases.get("Succeeded", 0),
        "failures": failures,
        "failure_evidence": evidence,
        "operator_rss_idle_kb": rss_idle.get("VmRSS"),
        "operator_vmhwm_kb": hwm.get("VmHWM"),
        "rss_samples": samples,
        "api_requests": requests,
        "api_requests_total": total_requests,
        "api_requests_per_run": round(total_requests / runs, 1),
        "load_before": load,
        "first_job_latency_median": round(median(first), 3) if first else None,
        "step_latency_median": round(median(latencies), 3) if latencies else None,
        "step_latency_p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "step_latency_max": round(max(latencies), 3) if latencies else None,
        "final_status_latency_median": round(median(finals), 3) if finals else None,
        "server_timestamps": server,
        "pods": pods_alive(events),
        "operator_env": dict(b.operator_env),
    }


def server_latencies(b: Bed, ns: str, names: list[str], events: list[watching.Event]) -> dict[str, Any]:
    """The same latencies from the API's own timestamps (1 s resolution): run creationTimestamp →
    first Job creationTimestamp; Job completionTime → next Job creationTimestamp. A cross-check of
    the watcher, whose arrival times could lag when it is flooded with events. Each Job as the watch
    last delivered it before its deletion: the operator deletes an ended run's Jobs (retain_seconds)."""
    from datetime import datetime

    def ts(value: str | None) -> float | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None

    with b.cluster.api_client() as api:  # type: ignore[union-attr]
        runs = kubernetes.client.CustomObjectsApi(api).list_namespaced_custom_object(
            watching.GROUP, watching.VERSION, ns, watching.PLURAL
        )["items"]
    run_created = {r["metadata"]["name"]: ts(r["metadata"]["creationTimestamp"]) for r in runs}
    last: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.kind == "job" and ev.type != "DELETED":
            last[ev.obj["metadata"]["uid"]] = ev.obj
    by_run: dict[str, list[dict[str, Any]]] = {}
    for job in last.values():
        by_run.setdefault((job["metadata"].get("labels") or {}).get("alembic-operator.dev/run", ""), []).append(job)
    first, steps = [], []
    for name in names:
        ordered = sorted(by_run.get(name, []), key=lambda j: ts(j["metadata"]["creationTimestamp"]) or 0.0)
        created = run_created.get(name)
        if ordered and created:
            first.append((ts(ordered[0]["metadata"]["creationTimestamp"]) or 0.0) - created)
        for prev, nxt in itertools.pairwise(ordered):
            completed = ts((prev.get("status") or {}).get("completionTime"))
            if completed:
                steps.append((ts(nxt["metadata"]["creationTimestamp"]) or 0.0) - completed)
    return {
        "first_job_median": median(first) if first else None,
        "step_median": median(steps) if steps else None,
        "step_p95": sorted(steps)[int(0.95 * (len(steps) - 1))] if steps else None,
        "samples": len(steps),
    }


def pods_alive(events: list[watching.Event]) -> dict[str, Any]:
    """How many of the benchmark's Pods existed at once (watch ADDED minus DELETED): what the one node
    carries. Before the operator deleted an ended run's Jobs this grew with every run (3,560 at 104 min).
    Also how many were not finished at once (phase Pending or Running): the step containers competing for the
    node's CPU, which ``maxRunningRuns`` bounds (~82 of them at once on 2 cores before it)."""
    alive: set[str] = set()
    unfinished: set[str] = set()
    peak = peak_unfinished = 0
    for ev in events:
        if ev.kind != "pod":
            continue
        uid = ev.obj["metadata"]["uid"]
        if ev.type == "DELETED":
            alive.discard(uid)
            unfinished.discard(uid)
        else:
            alive.add(uid)
            if (ev.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                unfinished.discard(uid)
            else:
                unfinished.add(uid)
        peak = max(peak, len(alive))
        peak_unfinished = max(peak_unfinished, len(unfinished))
    created = len({ev.obj["metadata"]["uid"] for ev in events if ev.kind == "pod"})
    return {"created": created, "peak_alive": peak, "alive_at_end": len(alive), "peak_unfinished": peak_unfinished}


def _evidence(b: Bed, ns: str, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run's status says of its steps and what its Jobs and Pods say of their ends: enough to tell
    a step that failed from one the operator misread, once the bed is gone."""
    assert b.cluster is not None
    run = next(it for it in items if it["metadata"]["name"] == name)
    status = run.get("status") or {}
    found: dict[str, Any] = {"steps": status.get("steps"), "conditions": status.get("conditions")}
    with b.cluster.api_client() as api:
        selector = f"{constants.LABEL_RUN}={name}"
        jobs = kubernetes.client.BatchV1Api(api).list_namespaced_job(ns, label_selector=selector).items
        pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items
        found["jobs"] = {j.metadata.name: api.sanitize_for_serialization(j.status) for j in jobs}
        found["pods"] = {
            p.metadata.name: {
                "phase": p.status.phase,
                "reason": p.status.reason,
                "containers": api.sanitize_for_serialization(p.status.container_statuses),
            }
            for p in pods
        }
    return found


def _why_not(failures: dict[str, str | None]) -> str:
    """Each run that did not succeed and its status message, shortened for the table."""
    return "; ".join(f"{name}: {message}" for name, message in sorted(failures.items()))[:2000]


def render(d: dict[str, Any]) -> str:
    top = sorted(d["api_requests"].items(), key=lambda kv: -kv[1])[:8]
    rows = [
        ["runs applied at once", d["runs"]],
        ["all Succeeded", f"{d['succeeded']}/{d['runs']}" + ("" if d["succeeded"] == d["runs"] else f" {d['phases']}")],
        *([["why not", _why_not(d["failures"])]] if d.get("failures") else []),
        ["time to all terminal", f"{d['all_terminal_s']} s" if d["all_terminal_s"] else "timed out"],
        [
            "operator peak RSS (VmHWM)",
            f"{d['operator_vmhwm_kb'] / 1024:.0f} MiB (idle {d['operator_rss_idle_kb'] / 1024:.0f} MiB)",
        ],
        ["API requests per run (operator)", d["api_requests_per_run"]],
        ["reconcile latency: run created → first Job, median", f"{d['first_job_latency_median']} s"],
        [
            "reconcile latency: Job complete → next Job, median / p95 / max",
            f"{d['step_latency_median']} / {d['step_latency_p95']} / {d['step_latency_max']} s",
        ],
        ["last Job complete → run Succeeded, median", f"{d['final_status_latency_median']} s"],
        [
            "same, from API timestamps (1 s resolution): first Job / next Job median / p95",
            f"{d['server_timestamps']['first_job_median']} / {d['server_timestamps']['step_median']} / "
            f"{d['server_timestamps']['step_p95']} s",
        ],
    ]
    if "io" in d:  # issue 18 rows (results from before them lack these)
        rows += [
            [
                "reconcile latency: Pod ended → next Job, median / p99",
                f"{d['pod_latency_median']} / {d['pod_latency_p99']} s",
            ],
            ["reconcile latency: Job complete → next Job, p99", f"{d['step_latency_p99']} s"],
            ["reads per run (GET/LIST, watches excluded)", d["io"]["reads_per_run"]],
            ["writes per run", orchestration.describe_writes(d["io"])],
        ]
    if "pods" in d:  # the operator deletes an ended run's Jobs, and so their Pods (issue 18, sixth session)
        p = d["pods"]
        rows.append(
            [
                "step Pods on the node: created / at most at once / left at the end",
                f"{p['created']} / {p['peak_alive']} / {p['alive_at_end']}",
            ]
        )
        if "peak_unfinished" in p:  # maxRunningRuns (issue 18, seventh session)
            rows.append(["step Pods not finished (Pending or Running) at most at once", p["peak_unfinished"]])
    title = f"Scale: {d['runs']} MigrationRuns on {d.get('databases', d['runs'])} databases at once"
    text = table(title, ["measure", "value"], rows)
    text += "\nRequests by kind (all runs): " + ", ".join(f"`{k}` {v}" for k, v in top) + "\n"
    if d.get("tracemalloc"):
        t = d["tracemalloc"]
        text += (
            f"\ntracemalloc in the operator (on for this run): traced peak {t['peak_kib'] / 1024:.1f} MiB; top sites "
            + ", ".join(f"`{site['where']}` {site['kib']:,.0f} KiB" for site in t["top"][:8])
            + "\n"
        )
    return text
