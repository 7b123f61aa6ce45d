"""The image's PostgreSQL 17 tools, with TLS, through the real operator.

:mod:`tests.steps.test_majors` runs the steps on this machine with the wheels' tools; here a
MigrationRun runs them in pods of the operator's image against a PostgreSQL 17 that accepts
only TLS (``sslmode=require`` in the Secret's URL). Its migration deletes rows, so every tool
is used: pg_dump for the backup, pg_restore and psql for the restore; the database must come
back exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from testbed.apps import App
from testbed.pytest_data import Database
from tests.e2e import dbstate
from tests.faults.support import seeded

from .test_majors import WheelServer

pytestmark = pytest.mark.testbed


@pytest.fixture
def tls17(bed_network: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelServer]:
    server = WheelServer(17, tls=True)
    try:
        server.start(tmp_path_factory.mktemp("pg17tls"))
        yield server
    finally:
        server.destroy()


def test_a_run_on_a_postgresql_17_that_accepts_only_tls_backs_up_and_restores_with_the_images_17_tools(
    tls17: WheelServer, cluster: Any, operator: Any, namespace: str, s3: Any, bucket: str
) -> None:
    name = tls17.create_database()
    database = Database(name=name, url=tls17.url(name), server=tls17)
    seeded(database, rows=50)
    before = dbstate.capture(database)
    app = App(
        cluster=cluster, namespace=namespace, database_url=database.url + "?sslmode=require", s3=s3, bucket=bucket
    )
    app.create_secrets()

    app.apply(app.manifest("pg17-tls", image="example-app:deletes-rows"))  # verify fails, the operator restores
    status = app.wait("pg17-tls", timeout=300)["status"]

    assert status["phase"] == "RolledBack", json.dumps(status, indent=1)
    assert status["backup"]["serverVersion"].startswith("17.") and status["backup"]["pgDumpVersion"].startswith("17.")
    assert status["steps"]["restore"]["outcome"] == "Succeeded", status["steps"]["restore"]
    assert dbstate.capture(database) == before
