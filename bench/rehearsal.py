"""The rehearsal (spec.rehearsal, issue 16) on the benchmark database against the plain tools.

The benchmark database (:mod:`bench.datagen`, at head) is first taken back to revision 0003 by
hand (``alembic downgrade 0003`` drops one index), so the rehearsed migration (0003 → head) builds
an index over the whole ``task`` table: real work proportional to the data. Then, back to back:

- plain: ``pg_dump -Fc`` to a local file (not in the ratio: the product's backup is not either),
  then the timed part — ``createdb``, ``pg_restore -j2 --no-owner`` into that empty database,
  ``alembic upgrade head`` on it by hand — then ``DROP DATABASE`` (timed, shown apart);
- the operator: one MigrationRun with ``rehearsal: {enabled: true}`` (``jobs`` 2, like the plain
  ``-j2``) to Succeeded; its rehearsal = prepare (fetch the backup from S3, check its SHA-256,
  create the scratch database, ``pg_restore -j2``) + migrate + verify + drop, as recorded in
  ``status.rehearsal.durationsSeconds``, and each rehearse Job's span (created → complete, from
  the API's timestamps) for the pod start-ups the durations leave out. Both have whole-second
  resolution (Kubernetes timestamps), so on a small database the ratio means little.

The ratio is the rehearsal's in-step seconds ÷ plain (restore + migrate). The rehearsal does more
than the plain path (download and checksum, a verify, write-counter baselines); the breakdown shows
where. One pair per run, on a shared machine: indicative only.

Must not: make a database of its own to fill (it gets the benchmark's), or leave the plain copy.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.bed import Bed
from bench.common import loadavg, ratio, table, timed
from testbed.apps import App

EXAMPLE = Path(__file__).resolve().parents[1] / "alembic" / "example"
ALEMBIC = str(Path(sys.executable).with_name("alembic"))
PARTS = ("prepare", "migrate", "verify", "drop")
REHEARSE_STEP = "rehearse"


def _alembic(b: Bed, database: str, *args: str) -> float:
    env = {**os.environ, "DATABASE_URL": b.pg.url(database)}
    return timed([ALEMBIC, *args], env=env, cwd=EXAMPLE)


def plain(b: Bed, *, database: str, scratch: Path) -> dict[str, Any]:
    """pg_dump -Fc (untimed in the ratio), then pg_restore -j2 into an empty database + alembic upgrade."""
    env, dump = b.pg.env(), scratch / "rehearsal-plain.dump"
    out: dict[str, Any] = {"load_before": loadavg()}
    out["pg_dump_s"] = round(
        timed([str(b.pg.tool("pg_dump")), "-w", "-Fc", "-f", str(dump), "-d", database], env=env), 3
    )
    out["dump_bytes"] = dump.stat().st_size
    copy = "rehearsal_plain"
    out["createdb_s"] = round(timed([str(b.pg.tool("createdb")), "-w", copy], env=env), 3)
    restore = [str(b.pg.tool("pg_restore")), "-w", "--no-owner", "-j2", "-d", copy, str(dump)]
    out["pg_restore_j2_s"] = round(timed(restore, env=env), 3)
    out["alembic_upgrade_s"] = round(_alembic(b, copy, "upgrade", "head"), 3)
    started = time.perf_counter()
    b.pg.drop_database(copy)
    out["drop_s"] = round(time.perf_counter() - started, 3)
    dump.unlink()
    out["total_s"] = round(out["createdb_s"] + out["pg_restore_j2_s"] + out["alembic_upgrade_s"], 3)
    return out


def _job_spans(app: App, run: str) -> dict[str, float]:
    """Seconds from each rehearse Job's creation to its completion (the API's timestamps)."""
    spans: dict[str, float] = {}
    for job in app.jobs():
        labels = job["metadata"].get("labels") or {}
        step = labels.get("alembic-operator.dev/step", "")
        done = (job.get("status") or {}).get("completionTime")
        if labels.get("alembic-operator.dev/run") == run and step.startswith(REHEARSE_STEP) and done:
            created = datetime.fromisoformat(job["metadata"]["creationTimestamp"])
            spans[step] = (datetime.fromisoformat(done) - created).total_seconds()
    return spans


def operator(b: Bed, *, database: str) -> dict[str, Any]:
    """One MigrationRun with the rehearsal on, to Succeeded; what status and the Jobs say it took."""
    assert b.cluster is not None
    ns = "rehearsal"
    b.cluster.kubectl("create", "namespace", ns)
    app = App(cluster=b.cluster, namespace=ns, database_url=b.pg.url(database), s3=b.s3, bucket=b.s3.create_bucket(ns))
    app.create_secrets()
    for _ in range(100):  # the ServiceAccount controller must have made "default" before pods are admitted
        if b.cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0:
            break
        time.sleep(0.2)
    name = "rehearsed-1"
    load = loadavg()
    started = time.monotonic()
    app.apply(app.manifest(name, spec={"rehearsal": {"enabled": True, "jobs": 2}}))
    status = app.wait(name, timeout=3600)["status"]
    wall = time.monotonic() - started
    rehearsal = status.get("rehearsal") or {}
    durations = {k: float(v) for k, v in (rehearsal.get("durationsSeconds") or {}).items()}
    return {
        "load_before": load,
        "phase": status["phase"],
        "message": status.get("message"),
        "run_wall_s": round(wall, 3),
        "durations_s": durations,
        "in_steps_s": round(sum(durations.get(p, 0.0) for p in PARTS), 3),
        "job_spans_s": _job_spans(app, name),
        "dropped": rehearsal.get("dropped"),
        "scratch_left": b.pg.scalar(
            f"SELECT count(*) FROM pg_database WHERE datname = '{rehearsal.get('database', '')}'"
        ),
    }


def run(b: Bed, *, database: str, scratch: Path) -> dict[str, Any]:
    """The benchmark database back at 0003, then the plain pair and the operator's rehearsal."""
    b.start_cluster()
    _alembic(b, database, "downgrade", "0003")
    db_bytes = int(b.pg.scalar(f"SELECT pg_database_size('{database}')"))
    by_hand = plain(b, database=database, scratch=scratch)
    product = operator(b, database=database)
    if product["phase"] != "Succeeded" or set(product["durations_s"]) != set(PARTS):
        raise RuntimeError(f"the rehearsed run did not succeed with every rehearsal step: {product}")
    return {
        "db_bytes": db_bytes,
        "plain": by_hand,
        "operator": product,
        "ratio": ratio(product["in_steps_s"], by_hand["total_s"]),
        "ratio_jobs": ratio(sum(product["job_spans_s"].values()), by_hand["total_s"]),
        "load_end": loadavg(),
    }


def render(data: dict[str, Any]) -> str:
    p, o = data["plain"], data["operator"]
    d, spans = o["durations_s"], o["job_spans_s"]
    rows = [
        ["restore the copy", "createdb + pg_restore -j2", p["createdb_s"] + p["pg_restore_j2_s"], d.get("prepare")],
        ["migrate (0003 → head)", "alembic upgrade head", p["alembic_upgrade_s"], d.get("migrate")],
        ["verify the copy", "—", "", d.get("verify")],
        ["drop the copy", "DROP DATABASE (not in the ratio)", p["drop_s"], d.get("drop")],
        ["**total**", "restore + migrate", p["total_s"], o["in_steps_s"]],
        ["rehearse Jobs created → complete", "", "", round(sum(spans.values()), 1)],
    ]
    title = (
        f"Rehearsal of the {data['db_bytes'] / 1e9:.2f} GB database: operator ÷ plain **{data['ratio']:.2f}** "
        f"(Jobs' spans ÷ plain {data['ratio_jobs']:.2f}; load {o['load_before']})"
    )
    return table(title, ["part", "plain tools", "plain s", "operator s"], rows)
