"""bench.scale.pods_alive: Pods existing at once, and Pods not finished at once (the step containers that
compete for the node's CPU, which maxRunningRuns bounds), from the watch's events in order."""

from __future__ import annotations

from bench.scale import pods_alive
from bench.watching import Event


def _pod(uid: str, type: str, phase: str) -> Event:
    return Event(at=0.0, kind="pod", type=type, name=uid, obj={"metadata": {"uid": uid}, "status": {"phase": phase}})


def test_a_finished_pod_still_exists_but_no_longer_runs_and_a_deleted_one_neither():
    events = [
        _pod("a", "ADDED", "Pending"),
        _pod("b", "ADDED", "Pending"),
        _pod("a", "MODIFIED", "Running"),
        _pod("a", "MODIFIED", "Succeeded"),  # a ended: 2 exist, 1 unfinished
        _pod("c", "ADDED", "Pending"),  # 3 exist, 2 unfinished
        _pod("b", "DELETED", "Running"),
        _pod("a", "DELETED", "Succeeded"),
        Event(at=0.0, kind="job", type="ADDED", name="j", obj={"metadata": {"uid": "j"}}),
    ]
    assert pods_alive(events) == {"created": 3, "peak_alive": 3, "alive_at_end": 1, "peak_unfinished": 2}
