"""Our finalizer patch replaces the list whole, so it carries the resourceVersion it was read at.

A reconcile now starts from Kopf's index, which can be a version behind (another controller may
add its own finalizer meanwhile, as Kopf did while the operator had per-run timers): a 409 must
read the run once and try again, keeping that finalizer, instead of failing the reconcile into a
5 s backoff. The API door (:mod:`alembic_operator.controller.apiserver`) is replaced by an apiserver-like store
with versions.
"""

from __future__ import annotations

from typing import Any

import pytest

from alembic_operator.api import constants
from alembic_operator.controller import apiserver, finalizing, indexes

KOPF = "kopf.zalando.org/KopfFinalizerMarker"


class Store:
    """One run with a resourceVersion; a metadata patch at another version is a conflict."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.run: dict[str, Any] = {"metadata": {"namespace": "shop", "name": "r", "resourceVersion": "1"}}
        self.gets = 0
        monkeypatch.setattr(apiserver, "patch_run_metadata", self.patch)
        monkeypatch.setattr(apiserver, "get_run", self.get)

    def bump(self, **metadata: Any) -> None:
        meta = self.run["metadata"]
        meta.update(metadata, resourceVersion=str(int(meta["resourceVersion"]) + 1))

    def get(self, *, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        return {"metadata": dict(self.run["metadata"])}

    def patch(self, *, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any]:
        if metadata["resourceVersion"] != self.run["metadata"]["resourceVersion"]:
            raise apiserver.Conflict("the object has been modified")
        self.bump(finalizers=metadata["finalizers"])
        return {"metadata": dict(self.run["metadata"])}


def test_a_conflict_reads_the_run_once_and_keeps_the_finalizer_kopf_added_meanwhile(monkeypatch):
    store = Store(monkeypatch)
    stale = {"metadata": dict(store.run["metadata"])}
    store.bump(finalizers=[KOPF])  # Kopf, after the index delivered the run
    seen = indexes.Indexes()
    patched = finalizing.set_finalizer(stale, wanted=True, indexes=seen)
    assert store.run["metadata"]["finalizers"] == [KOPF, constants.FINALIZER]
    assert store.gets == 1
    assert patched["metadata"]["resourceVersion"] == store.run["metadata"]["resourceVersion"]
    assert seen.written[("shop", "r")]["metadata"]["finalizers"] == [KOPF, constants.FINALIZER]


def test_a_finalizer_already_as_wanted_makes_no_request(monkeypatch):
    store = Store(monkeypatch)
    body = {"metadata": {**store.run["metadata"], "finalizers": [constants.FINALIZER]}}
    assert finalizing.set_finalizer(body, wanted=True) is body
    assert store.run["metadata"]["resourceVersion"] == "1" and store.gets == 0


def test_a_second_conflict_is_raised_for_the_reconciles_retry(monkeypatch):
    store = Store(monkeypatch)
    stale = {"metadata": dict(store.run["metadata"])}
    store.bump(finalizers=[KOPF])

    def racing_get(**_: Any) -> dict[str, Any]:
        fresh = {"metadata": dict(store.run["metadata"])}
        store.bump(finalizers=[KOPF, "other"])  # changed again right after that read
        return fresh

    monkeypatch.setattr(apiserver, "get_run", racing_get)
    with pytest.raises(apiserver.Conflict):
        finalizing.set_finalizer(stale, wanted=True)
