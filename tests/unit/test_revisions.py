"""Revision logic on the example app's and the scenarios' scripts (pure: no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import locking
from alembic_operator.job.migrations import alembic_runtime, revisions

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "alembic" / "example" / "alembic.ini"
SCENARIOS = REPO / "alembic" / "scenarios"


@pytest.fixture(scope="module")
def script():
    return revisions.load_scripts(revisions.load_config(EXAMPLE))


def scenario(name: str):
    return revisions.load_scripts(revisions.load_config(SCENARIOS / name / "alembic.ini"))


def test_the_example_has_one_head(script):
    assert revisions.heads(script) == ("0004",)
    assert revisions.single_head(script) == "0004"


@pytest.mark.parametrize(
    ("current", "target", "pending"),
    [
        ((), "head", ("0001", "0002", "0003", "0004")),
        (("0002",), "head", ("0003", "0004")),
        (("0004",), "head", ()),
        (("0001",), "0003", ("0002", "0003")),
        (("0002",), "0002", ()),
        ((), "heads", ("0001", "0002", "0003", "0004")),
    ],
)
def test_the_upgrade_path_lists_pending_revisions_in_order(script, current, target, pending):
    path = revisions.upgrade_path(script, current, target)
    assert path.pending == pending
    assert path.from_revision == (current[0] if current else None)


def test_an_unknown_database_revision_is_named_with_the_heads(script):
    with pytest.raises(errors.RevisionError) as info:
        revisions.upgrade_path(script, ("ffff",), "head")
    assert info.value.message == (
        "database is at revision ffff which this image's scripts do not contain; heads are 0004"
    )


@pytest.mark.parametrize("target", ["nope", "+1", "0009"])
def test_an_unknown_target_is_a_revision_error(script, target):
    with pytest.raises(errors.RevisionError, match=f"unknown target revision '\\{target}'|unknown target"):
        revisions.upgrade_path(script, (), target)


def test_a_target_below_the_database_is_refused(script):
    with pytest.raises(errors.RevisionError, match="target 0002 is below the database's revision 0004"):
        revisions.upgrade_path(script, ("0004",), "0002")


def test_multiple_heads_are_named():
    branched = scenario("multiple-heads")
    assert revisions.heads(branched) == ("0005a", "0005b")
    with pytest.raises(errors.RevisionError, match=r"multiple heads \(0005a, 0005b\)"):
        revisions.resolve_target(branched, "head")
    assert revisions.resolve_target(branched, "0005b") == ("0005b",)
    assert revisions.upgrade_path(branched, ("0004",), "heads").pending in (("0005a", "0005b"), ("0005b", "0005a"))


def test_between_lists_what_moved_the_database(script):
    assert revisions.between(script, (), ("0002",)) == ["0001", "0002"]
    assert revisions.between(script, ("0002",), ("0004",)) == ["0003", "0004"]
    assert revisions.between(script, ("0004",), ("0004",)) == []
    assert revisions.between(script, ("0004",), ()) == []


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("raises", "0005"),
        ("per-migration-tx", "0006"),
        ("deletes-rows", "0005"),
        ("creates-table-then-fails-verify", "0005"),
        ("slow", "0005"),
        ("destructive", "0005"),
    ],
)
def test_each_scenario_adds_its_revisions_on_top_of_the_example(name, head):
    scripts = scenario(name)
    assert revisions.heads(scripts) == (head,)
    assert revisions.upgrade_path(scripts, ("0004",), "head").pending[-1] == head


def test_only_the_per_migration_tx_scenario_commits_per_revision():
    for ini in sorted(SCENARIOS.glob("*/alembic.ini")):
        value = revisions.load_config(ini).get_main_option("transaction_per_migration")
        assert value == ("true" if ini.parent.name == "per-migration-tx" else "false"), ini


def test_the_version_table_options_default_to_alembic_version(script):
    config = revisions.load_config(EXAMPLE)
    assert revisions.version_table(config) == ("alembic_version", None)
    config.set_main_option("version_table", "shop_version")
    config.set_main_option("version_table_schema", "shop")
    assert revisions.version_table(config) == ("shop_version", "shop")


def test_a_missing_config_is_invalid_input(tmp_path):
    with pytest.raises(errors.InvalidInput, match="not found"):
        revisions.load_config(tmp_path / "alembic.ini")
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    with pytest.raises(errors.InvalidInput, match="no script_location"):
        revisions.load_config(tmp_path / "alembic.ini")


def test_a_broken_revision_file_is_a_revision_error(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0005_broken.py").write_text("revision = '0005'\ndown_revision = '0004'\nthis is not python\n")
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        f"[alembic]\nscript_location = {REPO}/alembic/example/migrations\npath_separator = os\n"
        f"version_locations = {REPO}/alembic/example/migrations/versions:{versions}\n"
    )
    with pytest.raises(errors.RevisionError, match="a revision file does not import: NameError"):
        revisions.load_scripts(revisions.load_config(ini))


def test_lock_keys_separate_databases_and_schemas_and_fit_a_bigint():
    keys = {locking.lock_key(db, schema) for db in ("shop", "shop2") for schema in ("public", "billing")}
    assert len(keys) == 4
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert locking.lock_key("shop", "public") == locking.lock_key("shop", "public")


@pytest.mark.parametrize("value", ["10s", "500ms", "1min", "0", "2h", " 3s "])
def test_lock_timeouts_like_postgres_durations_are_accepted(value):
    assert alembic_runtime.validate_lock_timeout(value) == value.strip()


@pytest.mark.parametrize("value", ["10 seconds", "-1s", "s", "10s; DROP TABLE x"])
def test_other_lock_timeouts_are_invalid_input(value):
    with pytest.raises(errors.InvalidInput):
        alembic_runtime.validate_lock_timeout(value)


def test_an_upgrade_to_heads_reaches_a_branch_the_database_is_not_on():
    """tests/projects/branches: 0002 (crm) and 0003 (billing) both grow from 0001; Alembic upgrades heads from 0002."""
    ini = Path(__file__).resolve().parents[1] / "projects" / "branches" / "alembic.ini"
    branched = revisions.load_scripts(revisions.load_config(ini))
    assert revisions.upgrade_path(branched, ("0002",), "heads").pending == ("0003",)
    assert revisions.upgrade_path(branched, (), "heads").pending in {("0001", "0002", "0003"), ("0001", "0003", "0002")}
    assert revisions.upgrade_path(branched, ("0002", "0003"), "heads").pending == ()
