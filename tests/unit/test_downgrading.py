"""Which revisions a downgrade would run without a real downgrade (pure: the scenarios' scripts, no database)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from alembic_operator.api import errors
from alembic_operator.job.migrations import downgrading, revisions

SCENARIOS = Path(__file__).resolve().parents[2] / "alembic" / "scenarios"


def scripts(name: str):
    return revisions.load_scripts(revisions.load_config(SCENARIOS / name / "alembic.ini"))


def test_a_downgrade_that_only_passes_is_missing_and_real_ones_are_not():
    assert downgrading.missing_downgrades(scripts("no-downgrade"), ("0005",), ("0004",)) == ["0005"]
    assert downgrading.missing_downgrades(scripts("no-downgrade"), ("0004",), ("0002",)) == []
    assert downgrading.missing_downgrades(scripts("per-migration-tx"), ("0006",), ()) == []  # down to base
    # a downgrade that leaves something behind still counts as one: the fingerprint check catches it
    assert downgrading.missing_downgrades(scripts("partial-downgrade"), ("0005",), ("0004",)) == []


def only_raises() -> None:
    """Irreversible."""
    raise NotImplementedError("cannot downgrade")


def does_something() -> None:
    print("undo")  # only its source is read
    raise NotImplementedError


@pytest.mark.parametrize(
    ("module", "has"),
    [
        (types.SimpleNamespace(), False),  # no downgrade() at all
        (types.SimpleNamespace(downgrade=only_raises), False),
        (types.SimpleNamespace(downgrade=does_something), True),
        (types.SimpleNamespace(downgrade=print), True),  # no Python source: it runs, the fingerprint decides
    ],
)
def test_what_counts_as_a_downgrade(module, has):
    assert downgrading._has_downgrade(module) is has


def test_a_target_that_is_not_below_the_database_is_a_revision_error():
    with pytest.raises(errors.RevisionError, match="cannot downgrade from 0002 to 0004"):
        downgrading.missing_downgrades(scripts("no-downgrade"), ("0002",), ("0004",))
