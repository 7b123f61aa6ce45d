"""A decision made from an older version of a run never overwrites a newer status.

Kopf's watch can deliver a run late under load; in the 1,000-run trial with tracemalloc on, a reconcile
started from a run as it was minutes before and wrote its status over the newer one (the run ended
Failed "without its URI" after its migration had run). The status patch now carries the version the
decision was made from and the finalizer goes on before deciding: the apiserver refuses either write
over a newer version (409), and the run is read again and decided again. The apiserver is a fake with
its precondition here; tests/security/test_apiserver_door.py shows the real one refuses the same way.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from alembic_operator.api import constants
from alembic_operator.controller import apiserver, handlers, indexes
from alembic_operator.controller.settings import Settings

NS, NAME = "shop", "r"


def run(version: str, status: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": "uid-r",
            "generation": 1,
            "resourceVersion": version,
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "finalizers": finalizers,
        },
        "spec": {
            "database": {"urlSecretRef": {"name": "db", "key": "DATABASE_URL"}},
            "migrate": {"image": "app:1"},
            "backup": {"s3": {"bucket": "backups", "credentialsSecretRef": {"name": "s3"}}},
        },
        "status": status,
    }


CURRENT = run("9", {"phase": "Migrating", "message": "migrating"}, [constants.FINALIZER])


class Apiserver:
    """Stores one run; a write carrying another resourceVersion than the stored one is refused (409)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stored = copy.deepcopy(CURRENT)
        self.reads = 0
        monkeypatch.setattr(apiserver, "get_run", self.get_run)
        monkeypatch.setattr(apiserver, "patch_run_status", self.patch_run_status)
        monkeypatch.setattr(apiserver, "patch_run_metadata", self.patch_run_metadata)
        monkeypatch.setattr(apiserver, "create_job", lambda **_: False)  # the Job exists: adopted
        monkeypatch.setattr(apiserver, "emit_event", lambda **_: None)

    def get_run(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return copy.deepcopy(self.stored)

    def _check(self, version: str | None) -> None:
        if version is not None and version != self.stored["metadata"]["resourceVersion"]:
            raise apiserver.Conflict("the object has been modified; please apply your changes to the latest version")

    def patch_run_status(self, *, status: dict[str, Any], resource_version: str | None = None, **_: Any) -> Any:
        self._check(resource_version)
        self.stored["status"] = {**self.stored["status"], **status}
        self.stored["metadata"]["resourceVersion"] = str(int(self.stored["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.stored)

    def patch_run_metadata(self, *, metadata: dict[str, Any], **_: Any) -> Any:
        self._check(metadata.get("resourceVersion"))
        self.stored["metadata"]["finalizers"] = metadata["finalizers"]
        return copy.deepcopy(self.stored)


def reconcile_from(stale: dict[str, Any]) -> tuple[handlers.ControllerMemo, float | None]:
    memo = handlers.ControllerMemo(settings=Settings())
    seen = indexes.Snapshot(run=stale, jobs=[], pods=[])
    return memo, handlers._reconcile_blocking(memo, NS, NAME, seen, [])


def test_a_run_seen_before_its_first_reconcile_is_decided_again_from_the_stored_one(monkeypatch):
    server = Apiserver(monkeypatch)
    _memo, after = reconcile_from(run("5", {}, []))  # as created: no finalizer, no status
    assert server.stored["status"]["phase"] == "Migrating"  # never sent back to Planning
    assert server.reads == 1  # the finalizer's conflict read it once
    assert after is not None


def test_a_status_decided_from_an_older_version_is_refused_and_the_run_is_read_again(monkeypatch):
    server = Apiserver(monkeypatch)
    memo, after = reconcile_from(run("5", {"phase": "Pending"}, [constants.FINALIZER]))
    assert server.stored["status"] == CURRENT["status"]  # nothing written
    assert after == 0.0  # decided again at once
    assert memo.indexes.written[(NS, NAME)]["metadata"]["resourceVersion"] == "9"  # from the stored run
    assert server.reads == 1


def test_a_decision_from_the_stored_version_is_written(monkeypatch):
    server = Apiserver(monkeypatch)
    fresh = run("9", {"phase": "Pending"}, [constants.FINALIZER])
    server.stored = copy.deepcopy(fresh)
    _memo, _after = reconcile_from(fresh)
    assert server.stored["status"]["phase"] == "Planning"
    assert server.reads == 0
