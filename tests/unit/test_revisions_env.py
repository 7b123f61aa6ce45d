"""How the steps read a user's own Alembic project without running it: its env.py's driver and connection use,
which statements may write rows, which build an index CONCURRENTLY (tests/projects/, no database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import urls
from alembic_operator.job.migrations import alembic_runtime, allowances, engines, observing, revisions

PROJECTS = Path(__file__).resolve().parents[1] / "projects"
EXAMPLE = Path(__file__).resolve().parents[2] / "alembic" / "example" / "alembic.ini"
URL = urls.DatabaseURL.parse("postgresql://app:p%40ss@db:5432/shop?sslmode=require")


def config(project: str):
    ini = PROJECTS / project / "alembic.ini"
    return revisions.load_config(ini if ini.is_file() else PROJECTS / project / "migrations" / "alembic.ini")


@pytest.mark.parametrize(
    ("project", "raw", "driver"),
    [
        ("async_template", "postgresql://h/db", "asyncpg"),  # env.py builds an async engine
        ("generic_template", "postgresql://h/db", None),  # SQLAlchemy's default driver
        ("generic_template", "postgresql+psycopg2://h/db", "psycopg2"),  # the Secret's URL names one
        ("asyncio_thread", None, "asyncpg"),
    ],
)
def test_the_env_gets_the_driver_it_was_written_for(project, raw, driver):
    assert engines.driver_for(config(project), raw) == driver


def test_the_url_keeps_its_password_and_escapes_for_the_ini(monkeypatch):
    cfg = config("generic_template")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engines.point_at(cfg, URL)
    assert cfg.get_main_option("sqlalchemy.url") == "postgresql://app:p%40ss@db:5432/shop?sslmode=require"
    assert engines.sqlalchemy_url(URL, "asyncpg") == "postgresql+asyncpg://app:p%40ss@db:5432/shop"


def test_offline_without_a_database_the_env_gets_a_placeholder_and_its_variable(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("APP_DATABASE_URL", raising=False)
    cfg = config("env_var_url")
    engines.point_at(cfg, None, url_env="APP_DATABASE_URL")
    assert cfg.get_main_option("sqlalchemy.url") == engines.OFFLINE_PLACEHOLDER
    assert os.environ["APP_DATABASE_URL"] == engines.OFFLINE_PLACEHOLDER


def test_only_an_env_that_reads_the_shared_connection_gets_it():
    assert alembic_runtime.takes_connection(revisions.load_config(EXAMPLE)) is True
    assert not any(alembic_runtime.takes_connection(config(p.name)) for p in PROJECTS.iterdir() if p.is_dir())


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("CREATE INDEX CONCURRENTLY ix ON t (x)", False),
        ("-- a comment\nALTER TYPE mood ADD VALUE 'ok'", False),
        ("/* c */ VACUUM t", False),
        ("INSERT INTO t VALUES (1)", True),
        ("update t set x = 1", True),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT 1", True),
        ("SELECT archive_rows()", True),  # a function may write
        ("COPY t FROM STDIN", True),
    ],
)
def test_which_autocommit_statements_may_write_rows(statement, writes):
    assert observing.writes_rows(statement) is writes


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        ("CREATE INDEX CONCURRENTLY ix_a ON t (x)", "ix_a"),
        ('create unique index concurrently if not exists "Ix B" on t (x)', '"Ix B"'),
        ("CREATE INDEX CONCURRENTLY app.ix_c ON app.t (x)", "app.ix_c"),
        ("CREATE INDEX CONCURRENTLY ON t (x)", None),  # unnamed: PostgreSQL picks the name
        ("CREATE INDEX ix_d ON t (x)", None),
    ],
)
def test_the_index_a_concurrent_build_creates(statement, index):
    assert observing.concurrent_index(statement) == index


def test_revisions_declare_the_data_changes_they_intend():
    script = revisions.load_scripts(config("data_migrations"))
    found = allowances.declared(script, ("0001", "0002", "0003", "0004", "0005"))
    assert found == [{"revision": "0003", "table": "legacy_order", "kind": "drop"}]
    assert allowances.declared(script, ("0004", "0005")) == []  # only the pending revisions count
    assert allowances.tables_allowed_to_decrease(found) == ["legacy_order"]


def test_a_malformed_declaration_names_its_revision():
    script = revisions.load_scripts(config("data_migrations"))
    module = script.get_revision("0005").module
    try:
        module.alembic_operator_allow = {"drop": "legacy_order"}  # a string, not a list
        with pytest.raises(errors.RevisionError, match="revision 0005"):
            allowances.declared(script, ("0005",))
    finally:
        del module.alembic_operator_allow


def test_flask_migrates_ini_without_script_location_uses_its_own_folder():
    cfg = config("flask_migrate")  # `flask db init` writes alembic.ini into migrations/ with no script_location
    assert cfg.get_main_option("script_location") == str((PROJECTS / "flask_migrate" / "migrations").resolve())
    assert revisions.heads(revisions.load_scripts(cfg)) == ("0003",)
