"""Watch Jobs, Pods and MigrationRuns of a namespace and timestamp every event on arrival.

One clock (``time.time()`` of this process) for all events, so the gaps between
"a Job completed" and "the next Job was created" are measured as the operator
could see them at the earliest, with sub-second resolution (the API's own
timestamps have one-second resolution).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import kubernetes.watch

from testbed.cluster import Cluster

GROUP, VERSION, PLURAL = "alembic-operator.dev", "v1alpha1", "migrationruns"


@dataclass
class Event:
    at: float
    kind: str
    type: str
    name: str
    obj: dict[str, Any]


@dataclass
class Recorder:
    cluster: Cluster
    namespace: str | None
    events: list[Event] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Recorder:
        ready = []
        for kind in ("job", "pod", "run"):
            ev = threading.Event()
            ready.append(ev)
            t = threading.Thread(target=self._watch, args=(kind, ev), daemon=True, name=f"watch-{kind}")
            t.start()
            self._threads.append(t)
        for ev in ready:
            ev.wait(30)
        return self

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def _watch(self, kind: str, ready: threading.Event) -> None:
        api = self.cluster.api_client()
        batch, core, custom = (
            kubernetes.client.BatchV1Api(api),
            kubernetes.client.CoreV1Api(api),
            kubernetes.client.CustomObjectsApi(api),
        )
        rv = None
        while not self._stop.is_set():
            w = kubernetes.watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": 5, "_request_timeout": 10}
            if rv:
                kwargs["resource_version"] = rv
            try:
                if kind == "job":
                    fn, args = (
                        (batch.list_namespaced_job, (self.namespace,))
                        if self.namespace
                        else (batch.list_job_for_all_namespaces, ())
                    )
                elif kind == "pod":
                    fn, args = (
                        (core.list_namespaced_pod, (self.namespace,))
                        if self.namespace
                        else (core.list_pod_for_all_namespaces, ())
                    )
                else:
                    fn, args = (
                        (custom.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL))
                        if self.namespace
                        else (custom.list_cluster_custom_object, (GROUP, VERSION, PLURAL))
                    )
                if rv is None:
                    listing = fn(*args)
                    rv = (
                        listing["metadata"]["resourceVersion"]
                        if isinstance(listing, dict)
                        else listing.metadata.resource_version
                    )
                    ready.set()
                    continue
                for item in w.stream(fn, *args, **kwargs):
                    at = time.time()
                    obj = item["object"]
                    obj = obj if isinstance(obj, dict) else api.sanitize_for_serialization(obj)
                    rv = obj["metadata"].get("resourceVersion", rv)
                    with self._lock:
                        self.events.append(Event(at, kind, item["type"], obj["metadata"]["name"], obj))
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - watch expired or dropped: resume
                if rv is not None and self._stop.is_set():
                    break
                time.sleep(0.1)
                if not ready.is_set():
                    continue
                rv = rv  # resume from the last seen version


def job_complete(obj: dict[str, Any]) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def pod_finished(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
