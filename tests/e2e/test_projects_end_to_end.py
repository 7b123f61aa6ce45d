"""Users' own Alembic projects through the operator, on the real test bed (issue 15), PostgreSQL 15.

tests/steps/test_projects.py proves every project of tests/projects/ at step level; here two of
them run end to end as their users would run them: the app image carries the project as
``alembic init -t async`` / ``-t generic`` wrote it (env.py and alembic.ini unmodified, at
/app/projects/<name>), the run's ``spec.migrate.workingDir`` points the plan and migrate Jobs at
it, and the database Secret holds a plain ``postgresql://`` URL. Each test brings the app's
database to 0002 the way the app's own people do (``alembic upgrade`` by hand), then

* a run that goes wrong leaves the data and schema exactly as they were (row checksums and
  ``pg_dump --schema-only`` before and after), and is never held for "other sessions' writes":
  nobody but the migration wrote. async_template: the migration commits and ``verify.rowCounts``
  ``content`` finds the customer rows it rewrote, so the backup is restored (RolledBack) — the
  rows the env's own async engine wrote must count as the migration's own. generic_template: a
  failure injected into revision 0003 (the ``example-app:inject-failure`` image) rolls the
  env's single transaction back: Failed, no restore needed;
* a second run to head succeeds, and its schema and data equal ``alembic upgrade head`` run by
  hand with the same env.py and ini on a second database (the diff of the two schema dumps is
  empty); every session the env opened carried the run's name and lock_timeout.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import pytest

from alembic_operator.api import location
from testbed import operating
from testbed.apps import TERMINAL
from testbed.pytest_data import Database
from tests.example.support import schema_dump
from tests.faults.support import on_pg15
from tests.steps import checksums, read_json
from tests.steps.projects import by_hand

pytestmark = on_pg15
HELD = "RollbackHeld"


@pytest.fixture
def second_database(database: Database) -> Iterator[Database]:
    """A fresh database on the same server, where ``alembic upgrade`` runs by hand."""
    server = database.server
    name = server.create_database()
    yield Database(name=name, url=server.url(name), server=server)
    server.drop_database(name)


def _spec(project: str, **extra: Any) -> dict[str, Any]:
    return {"migrate": {"workingDir": f"{operating.IMAGE_PROJECTS_DIR}/{project}"}, **extra}


def _ends_without_a_hold(app: Any, run: str) -> dict[str, Any]:
    """The run's final status; a hold would end the wait at once (and fail), not time out."""
    status: dict[str, Any] = app.wait(run, phases={HELD, *TERMINAL}, timeout=300)["status"]
    assert status["phase"] != HELD, status
    assert HELD not in {reason for _type, reason, _message in app.events(run)}
    return status


def _run_file(app: Any, status: dict[str, Any], name: str) -> Any:
    """A JSON object the run's steps wrote into its S3 folder."""
    folder = location.Location.parse(status["location"])
    return read_json(app.s3.client(), folder.bucket, folder.key(name))


def _state(database: Database) -> tuple[str, dict[str, str]]:
    return schema_dump(database), checksums(database)


def _migrates_to_head_like_by_hand(app: Any, database: Database, manual: Database, project: str) -> None:
    """A run from 0002 to head succeeds, equal to ``alembic upgrade head`` by hand on ``manual``."""
    by_hand(project, manual, "head")
    run = f"{project.replace('_', '-')}-ok"
    app.apply(app.manifest(run, spec=_spec(project)))
    status = _ends_without_a_hold(app, run)
    assert status["phase"] == "Succeeded", status
    assert (status["fromRevision"], status["toRevision"]) == ("0002", "0003")
    ours, theirs = schema_dump(database), schema_dump(manual)
    diff = list(difflib.unified_diff(theirs.splitlines(), ours.splitlines(), "by hand", "operator", lineterm=""))
    assert diff == [], "\n".join(diff)
    assert checksums(database) == checksums(manual)
    end = _run_file(app, status, location.STATS_MIGRATE_END)
    assert end["sessions"] >= 1 and end["unmarkedSessions"] == 0, end  # the env's own engine, named and timed
    print(f"\n{project}: schema diff with alembic upgrade head by hand: {len(diff)} lines; {len(ours)} chars equal")


def test_the_async_template_project_rolls_back_intact_then_migrates_like_alembic_upgrade_by_hand(
    app: Any, database: Database, second_database: Database
) -> None:
    by_hand("async_template", database, "0002")
    before = _state(database)

    app.apply(app.manifest("async-rewrites", spec=_spec("async_template", verify={"rowCounts": {"mode": "content"}})))
    status = _ends_without_a_hold(app, "async-rewrites")

    assert status["phase"] == "RolledBack", status
    assert status["steps"]["migrate"]["outcome"] == "Succeeded"
    assert status["steps"]["restore"]["outcome"] == "Succeeded", status["steps"]
    assert "customer" in status["message"], status["message"]
    # what the restore counted before it went ahead: 0003's writes through the env's own async engine
    # (every customer renamed, 100 invoices) are the migration's own, so no other session wrote anything
    counted = _run_file(app, status, location.STATS_PRE_RESTORE)
    assert counted["foreignWritesByTable"] == {} and counted["foreignWrites"]["rows"] == 0, counted
    assert counted["ownWrites"]["public.customer"]["n_tup_upd"] == 50, counted["ownWrites"]
    assert counted["ownWrites"]["public.invoice"]["n_tup_ins"] == 100, counted["ownWrites"]
    after = _state(database)
    assert after == before
    print(f"\nasync_template: {status['message']}; own writes counted {counted['ownWrites']}")
    print(f"async_template rolled back: {len(after[1])} tables/sequences' checksums and the schema as before")

    _migrates_to_head_like_by_hand(app, database, second_database, "async_template")


# Only in `make test-full` (CI's budget, issue 17): tests/steps/test_projects.py proves the generic template at
# step level, the async one above proves the operator's way into a user's project, and an injected failure
# ending Failed with nothing to restore is tests/e2e/test_lifecycle.py's.
@pytest.mark.full
def test_the_generic_template_project_fails_untouched_then_migrates_like_alembic_upgrade_by_hand(
    app: Any, database: Database, second_database: Database
) -> None:
    by_hand("generic_template", database, "0002")
    before = _state(database)

    app.apply(app.manifest("generic-fails", image=operating.INJECT_FAILURE_IMAGE, spec=_spec("generic_template")))
    status = _ends_without_a_hold(app, "generic-fails")

    assert status["phase"] == "Failed", status
    assert "revision 0003" in status["message"] and "no changes were committed" in status["message"], status
    assert "restore" not in status["steps"], status["steps"]
    after = _state(database)
    assert after == before
    print(f"\ngeneric_template: {status['message']}")
    print(f"generic_template failed: {len(after[1])} tables/sequences' checksums and the schema as before")

    _migrates_to_head_like_by_hand(app, database, second_database, "generic_template")
