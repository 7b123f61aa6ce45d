"""Fault tests: the recording plugin (one table row per fault) and the PostgreSQL version they run on.

Most faults run on PostgreSQL 15 only (``on_pg15``) to keep `make faults` within
minutes on two cores; the restore paths that differ by version run on both in `make faults`
and `make test-full`, and `make test` runs on 18 only those marked ``both_majors``
(tests/conftest.py).
"""

from __future__ import annotations

import pytest

PLUGIN = "tests.faults.recording"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
