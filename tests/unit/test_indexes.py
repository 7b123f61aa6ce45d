"""A reconcile starts from the newer of Kopf's index and the operator's own last write of the run.

The watch that fills the index lags the apiserver: right after a status patch a Pod event can wake a
reconcile whose index still holds the run before that patch. Deciding from it would replay the last
decision (its Events again, its Job create again). Kopf's indexes are mappings of key → store of values;
plain dicts of lists stand in for them here (the real ones run in the bed's end-to-end suites).
"""

from __future__ import annotations

from typing import Any

from alembic_operator.api import constants
from alembic_operator.controller import indexes


def run(version: str, phase: str) -> dict[str, Any]:
    meta = {"name": "r", "namespace": "shop", "uid": "u", "resourceVersion": version}
    return {"metadata": meta, "spec": {}, "status": {"phase": phase}}


def attached(runs: dict[Any, list[Any]], jobs: dict[Any, list[Any]] | None = None) -> indexes.Indexes:
    found = indexes.Indexes()
    found.attach({"runs": runs, "step_jobs": jobs or {}, "step_pods": {}})  # type: ignore[dict-item]
    return found


def test_the_operators_own_write_wins_over_an_index_that_lags_behind_it():
    index = {("shop", "r"): [run("10", "Planning")]}
    found = attached(index)
    found.wrote(run("12", "BackingUp"))
    seen = found.snapshot("shop", "r", "r")
    assert seen is not None and seen.run is not None
    assert seen.run["status"]["phase"] == "BackingUp"


def test_once_the_watch_delivers_that_version_or_a_newer_one_the_index_is_read_and_the_write_forgotten():
    index = {("shop", "r"): [run("10", "Planning")]}
    found = attached(index)
    found.wrote(run("12", "BackingUp"))
    index[("shop", "r")] = [run("13", "BackingUp")]  # e.g. someone annotated the run after our patch
    seen = found.snapshot("shop", "r", "r")
    assert seen is not None and seen.run is not None and seen.run["metadata"]["resourceVersion"] == "13"
    assert found.written == {}


def test_a_run_in_neither_is_none_and_the_jobs_are_found_under_the_runs_label():
    job = {"metadata": {"name": "j"}}
    found = attached({}, {("shop", "label-of-r"): [job]})
    seen = found.snapshot("shop", "r", "label-of-r")
    assert seen is not None and seen.run is None and seen.jobs == [job] and seen.pods == []


def test_without_kopfs_indexes_there_is_no_snapshot_and_the_handler_reads_the_api():
    assert indexes.Indexes().snapshot("shop", "r", "r") is None


def test_a_run_is_settled_once_its_terminal_status_is_stored_and_our_finalizer_gone():
    """Then its Jobs' and Pods' later events need no reconcile (the handler skips them)."""
    ended = run("20", "Failed")
    found = attached({("shop", "r"): [ended]})
    assert found.settled("shop", "r")
    for phase in ("Migrating", "RollingBack", "Pending"):
        assert not attached({("shop", "r"): [run("20", phase)]}).settled("shop", "r")


def test_a_run_still_finishing_or_being_deleted_or_unknown_is_not_settled():
    holding = run("20", "Succeeded")
    holding["metadata"]["finalizers"] = [constants.FINALIZER]  # the terminal pass has not removed it yet
    assert not attached({("shop", "r"): [holding]}).settled("shop", "r")
    deleting = run("20", "Failed")
    deleting["metadata"]["deletionTimestamp"] = "2026-11-30T08:00:00Z"  # e.g. a rehearsal's drop Job to start
    assert not attached({("shop", "r"): [deleting]}).settled("shop", "r")
    assert not attached({}).settled("shop", "r")
    assert not indexes.Indexes().settled("shop", "r")  # before Kopf's indexes are attached


def test_our_own_terminal_write_settles_a_run_the_index_still_shows_running():
    found = attached({("shop", "r"): [run("10", "Verifying")]})
    found.wrote(run("12", "Succeeded"))
    assert found.settled("shop", "r")
