"""``kubectl alembic logs``: the step pods' logs in step order, through ``pods/log`` as the user.

Pods are ordered by step (plan, backup, migrate, verify, restore), then by creation
(a restore's second attempt after an approval follows its first). When the kubelet
cannot serve a log (the pod's node is gone, or none serves ``pods/log``), the
container's termination message — the step's JSON result — stands in, marked so.

Must not: read logs with anyone's credentials but the user's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from alembic_operator.api import constants
from alembic_operator.client.plugin import reading
from alembic_operator.client.plugin.connecting import Connection


def _order(pod: dict[str, Any]) -> tuple[int, str]:
    step = ((pod.get("metadata") or {}).get("labels") or {}).get(constants.LABEL_STEP, "")
    rank = constants.STEPS.index(step) if step in constants.STEPS else len(constants.STEPS)
    return rank, str(pod["metadata"].get("creationTimestamp") or "")


def _termination_message(pod: dict[str, Any], container: str) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses + ((pod.get("status") or {}).get("initContainerStatuses") or []):
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated") or {}
            return str(terminated.get("message") or "").strip()
    return ""


def collect(conn: Connection, run: str, *, warn: Callable[[str], None]) -> str:
    """Every step container's log, each under a header naming step, pod and container."""
    reading.get_run(conn, run)  # a mistyped name says so instead of printing nothing
    pods = sorted(reading.list_step_pods(conn, run), key=_order)
    if not pods:
        return (
            f"no step pods of MigrationRun {run} are left: the operator deletes an ended run's step Jobs, and their "
            "pods with them, stepJobs.retainSeconds after the run ended (a failed step's Job stays unless "
            "stepJobs.retainFailed is false); `kubectl alembic status` still shows each step's result"
        )
    out: list[str] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        step = pod["metadata"].get("labels", {}).get(constants.LABEL_STEP, "?")
        spec = pod.get("spec") or {}
        for container in [c["name"] for c in (spec.get("initContainers") or []) + spec.get("containers", [])]:
            out.append(f"==> step {step}: pod {name}, container {container}")
            try:
                out.append(reading.read_log(conn, name, container).rstrip("\n"))
            except ApiException as exc:
                warn(f"pods/log of {name}/{container} unavailable: {reading.api_error(exc)}")
                message = _termination_message(pod, container)
                out.append(f"(log unavailable; termination message) {message or '(none)'}")
    return "\n".join(out)
