"""Test-bed fixtures come from plugins in testbed/ (real servers, started lazily, once per session).

A missing tool or server fails the run loudly (testbed.tools.MissingTool); nothing here skips.

Under pytest-xdist (``make test`` runs ``-n $(PYTEST_WORKERS) --dist loadgroup``) a session is
a worker: each worker starts its own bed. Tests that share a module- or class-scoped fixture (a
Helm-installed operator, a chart copy) are put in one ``xdist_group`` per module, so that bed is
set up once, on one worker, and the module's tests run in their written order; every other
test goes to whichever worker is free.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["testbed.pytest_cluster", "testbed.pytest_data", "testbed.pytest_operator"]

SHARED_SCOPES = frozenset({"module", "class", "package"})


def shares_a_scoped_bed(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture set up once for several tests but not for the whole session."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in SHARED_SCOPES
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


SLOW_FIRST = (
    "faults",
    "property",
    "e2e",
    "helm",
    "release",
    "plugin",
    "security",
    "example",
    "steps",
    "testbed",
    "image",
)
"""Test directories in the order pytest-xdist should hand them out: the ones that wait on a bed
longest first, so the last minutes of a run are filled with quick tests instead of one long one
(xdist keeps collection order for ungrouped tests; groups go first, the largest first)."""


def start_order(item: pytest.Item) -> int:
    parts = item.nodeid.split("/")
    top = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return SLOW_FIRST.index(top) if top in SLOW_FIRST else len(SLOW_FIRST)


def only_in_the_full_run(item: pytest.Item) -> bool:
    """A PostgreSQL 18 case that ``make test`` leaves to ``make test-full`` (marker ``full``).

    What depends on the server's major is pg_dump/pg_restore/the catalog, all inside the steps, and
    tests/steps proves every step on 15 and 18; the operator around them adds nothing major-specific.
    So ``make test`` runs the end-to-end and fault suites on 15, plus the few cases marked
    ``both_majors`` on 18 as well (a success and a restore; the restore whose script differs by
    major). In tests/steps it leaves out the 18 case of what is marked ``one_major``: Alembic, locks,
    S3 and checksum logic, which behave alike on every major. ``make test-full`` runs every case on
    both. The ``pg`` parameter is the major (``pg`` fixture) or the server fixture's name (a module's
    own indirect ``pg``).
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None or callspec.params.get("pg") not in (18, "pg18"):
        return False
    if item.nodeid.startswith(("tests/e2e/", "tests/faults/")):
        return item.get_closest_marker("both_majors") is None
    return item.nodeid.startswith("tests/steps/") and item.get_closest_marker("one_major") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "one_major: a step test whose behaviour does not depend on the server's major (make test: 15 only)"
    )


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marker into the group it schedules by
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if only_in_the_full_run(item):
            item.add_marker(pytest.mark.full)
        if shares_a_scoped_bed(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=start_order)  # stable: each module keeps its written order
