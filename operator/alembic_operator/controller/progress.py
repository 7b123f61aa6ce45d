"""Poll a running backup's or restore's pod for its progress and record it as ``status.progress``.

One loop (every :data:`POLL_SECONDS`, :mod:`.sweeping`) polls each run while it is BackingUp or RollingBack, and
once more after the step ended, to make the record final: then its bytes are the backup's size
from the step's result (``status.backup.sizeBytes``), so the PROGRESS column's last value is the
size in the BACKUP column. The pod serves its count (:mod:`alembic_operator.job.progress`); the
operator reads it at the pod's IP, so it needs no Secret, no S3 and no ``pods/log``; the IP comes
from a Kopf index over the pod watch the handlers already hold (no LIST per tick).

Must not: decide the run's course (the reconciler does; this writes only ``status.progress``),
block the event loop (the I/O runs in a thread), or fail a run: a pod that does not answer
is skipped until the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
import pydantic

from alembic_operator.api import constants, model, status_progress
from alembic_operator.api.status_progress import ServedProgress, StepProgress
from alembic_operator.controller import apiserver, naming, sweeping

log = logging.getLogger(__name__)

POLL_SECONDS = 3.0
"""How often a running backup's or restore's pod is asked for its byte count."""
TIMEOUT_SECONDS = 2.0
"""A pod that does not answer within this is skipped until the next tick."""

STEP_OF_PHASE = {model.Phase.BACKING_UP.value: "backup", model.Phase.ROLLING_BACK.value: "restore"}


def wants_progress(status: Mapping[str, Any]) -> bool:
    """A step that serves progress runs, or the recorded progress is not final yet."""
    recorded = status.get("progress") or {}
    return status.get("phase") in STEP_OF_PHASE or (bool(recorded) and not recorded.get("final"))


def finished(status: Mapping[str, Any], *, now: datetime) -> StepProgress | None:
    """The final record once the recorded step has ended (None while it runs or when already final)."""
    recorded = status.get("progress") or {}
    if not recorded or recorded.get("final"):
        return None
    step = recorded.get("step")
    outcome = ((status.get("steps") or {}).get(step) or {}).get("outcome")
    if outcome is None and status.get("phase") in STEP_OF_PHASE and STEP_OF_PHASE[status["phase"]] == step:
        return None
    done = int(recorded.get("bytesDone") or 0)
    size = (status.get("backup") or {}).get("sizeBytes")
    if outcome == "Succeeded" and size is not None:
        done = int(size)  # the whole dump went through: the result's size is exact
    word = {"Succeeded": "done", "Failed": "failed"}.get(outcome or "", "stopped")
    return StepProgress(
        step=step,
        bytes_done=done,
        bytes_total=recorded.get("bytesTotal"),
        percent=100 if outcome == "Succeeded" and recorded.get("bytesTotal") else recorded.get("percent"),
        summary=f"{step} {naming.human_size(done)}, {word}",
        final=True,
        updated_at=now,
    )


def running(served: ServedProgress, *, status: Mapping[str, Any], now: datetime) -> StepProgress:
    """The record of a running step: rate since its start, and for a restore (whose total is the dump's
    size) the percentage and an estimate of the time left."""
    total = served.bytes_total
    if total is None and served.step == "restore":
        total = (status.get("backup") or {}).get("sizeBytes")
    rate = int(served.bytes_done / served.seconds) if served.seconds > 0 else None
    percent = min(100, served.bytes_done * 100 // total) if total else None
    left = (total - served.bytes_done) // rate if total and rate and total >= served.bytes_done else None
    parts = [f"{served.step} {naming.human_size(served.bytes_done)}"]
    if total:
        parts[0] += f" of {naming.human_size(total)} ({percent}%)"
    if rate is not None:
        parts.append(f"{naming.human_size(rate)}/s")
    if left is not None:
        parts.append(f"~{left}s left")
    return StepProgress(
        step=served.step,
        bytes_done=served.bytes_done,
        bytes_total=total,
        percent=percent,
        bytes_per_second=rate,
        seconds_left=left,
        summary=", ".join(parts),
        updated_at=now,
    )


PodKey = tuple[str, str, str]
"""(namespace, run label, step) of a running step pod."""
PodIndex = kopf.Index[PodKey, tuple[str, str | None]]
"""Kopf's live index :func:`running_step_pods`: (IP, Job name) of each running step pod."""


@kopf.index("", "v1", "pods", labels={constants.LABEL_MANAGED_BY: constants.MANAGED_BY})
def running_step_pods(body: kopf.Body, namespace: str | None, **_: Any) -> dict[PodKey, tuple[str, str | None]]:
    """Index each running step pod's IP, fed by the pod watch the handlers already have: no LIST per tick."""
    labels, state = body.get("metadata", {}).get("labels") or {}, body.get("status") or {}
    run, step = labels.get(constants.LABEL_RUN), labels.get(constants.LABEL_STEP)
    if namespace is None or not run or not step or state.get("phase") != "Running" or not state.get("podIP"):
        return {}
    return {(namespace, str(run), str(step)): (str(state["podIP"]), labels.get("job-name"))}


def step_pod_ip(pods: Iterable[tuple[str, str | None]], *, job: str | None) -> str | None:
    """The IP of the step's running pod (of its current Job when known), from the index's entries."""
    for ip, pod_job in pods:
        if job is None or pod_job in (None, job):
            return ip
    return None


def read_pod(ip: str) -> ServedProgress | None:
    """Ask a step pod for its count; None when it does not answer (not started serving, or gone)."""
    host = f"[{ip}]" if ":" in ip else ip
    url = f"http://{host}:{status_progress.PORT}{status_progress.PATH}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return ServedProgress.model_validate_json(response.read())
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        log.debug("no progress from %s: %s", url, exc)
        return None


def poll(
    namespace: str, name: str, status: Mapping[str, Any], pods: Mapping[PodKey, Iterable[tuple[str, str | None]]]
) -> StepProgress | None:
    """One tick, blocking: the record to write now, if any (``pods``: :func:`running_step_pods`' index)."""
    now = datetime.now(UTC)
    final = finished(status, now=now)
    if final is not None:
        return final
    step = STEP_OF_PHASE.get(str(status.get("phase")))
    if step is None:
        return None
    job = ((status.get("steps") or {}).get(step) or {}).get("job")
    ip = step_pod_ip(list(pods.get((namespace, naming.label_value(name), step), ())), job=job)
    served = read_pod(ip) if ip else None
    if served is None or served.step != step:
        return None
    return running(served, status=status, now=now)


@kopf.on.startup()
async def _start_polling(memo: sweeping.HoldsTasks, **indices: Any) -> None:
    """One loop polls every run that wants progress (:mod:`.sweeping`: not a Kopf timer per run)."""
    runs, pods = indices["runs"], indices["running_step_pods"]  # Kopf passes each index under its function's name
    sweeping.start(memo, POLL_SECONDS, lambda: _poll_all(runs, pods), what="progress poll")


async def _poll_all(runs: Mapping[Any, Any], pods: PodIndex) -> None:
    """One tick: each run in BackingUp or RollingBack (or just out of it) at once, each poll in a thread."""
    statuses = ((key, run.get("status") or {}) for key, run in sweeping.runs(runs))
    wanted = [(key, dict(status)) for key, status in statuses if wants_progress(status)]  # copy only those
    await asyncio.gather(*(_poll_one(ns, name, status, pods) for (ns, name), status in wanted))


async def _poll_one(namespace: str, name: str, status: dict[str, Any], pods: PodIndex) -> None:
    record = await asyncio.to_thread(poll, namespace, name, status, pods)
    if record is not None:
        # Every key, nulls too: a merge patch must not keep a stale secondsLeft or percent.
        patch = record.model_dump(mode="json", by_alias=True)
        await asyncio.to_thread(apiserver.patch_run_status, namespace=namespace, name=name, status={"progress": patch})
