"""Every step test doubles as a contract test: each result a step wrote parses into its model.

The step helpers (here and in :mod:`tests.example.support`) write each run's termination
message into the test's ``tmp_path``; after the test, every such result is read back with
:func:`alembic_operator.api.results.parse`, as the operator reads it, and must give the
step's own model, never :class:`~alembic_operator.api.results.Unreadable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import assert_parses_into_its_model, written_results


@pytest.fixture(autouse=True)
def every_result_parses_into_its_model(tmp_path: Path) -> Iterator[None]:
    yield
    for path, text in written_results(tmp_path):
        try:
            assert_parses_into_its_model(text)
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from None
