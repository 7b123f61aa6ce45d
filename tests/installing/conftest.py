"""Fixtures of tests/installing: the base-install venv (:mod:`tests.installing.venvs`) and a summary section."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.installing import venvs

REPORT: list[str] = []


@pytest.fixture(scope="session")
def base_venv() -> venvs.BaseVenv:
    """The base-install venv of this checkout, created once per lock and refreshed per source change."""
    return venvs.prepare()


@pytest.fixture(scope="session")
def summary_line() -> Callable[[str], None]:
    """Adds a line to the "base install" section of the terminal summary."""
    return REPORT.append


def pytest_terminal_summary(terminalreporter):  # start-up times in the summary
    if REPORT:
        terminalreporter.section("base install")
        for line in REPORT:
            terminalreporter.write_line(line)
