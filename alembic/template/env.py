"""Alembic environment for async SQLAlchemy / SQLModel applications (alembic-operator template).

Copy this file to your migrations directory unchanged; everything app-specific
comes from ``alembic.ini`` so that the same file serves every app:

* ``models_package``   -- the package holding your models, e.g. ``taskapp.models``.
  Every module under it is imported (``pkgutil.walk_packages``), so a model that
  nobody imported is never silently missing from ``SQLModel.metadata`` (the
  classic cause of autogenerate proposing to drop a table).
* ``transaction_per_migration`` -- ``true`` commits after each revision; the
  default ``false`` runs all pending revisions in one transaction, which
  PostgreSQL rolls back as a whole when any of them fails.
* ``version_table`` / ``version_table_schema`` -- optional; alembic-operator
  reads the same options, so the two always agree.

The database URL comes from ``DATABASE_URL`` (``postgresql://`` is turned into
``postgresql+asyncpg://``), falling back to ``sqlalchemy.url``. No credentials
belong in ``alembic.ini``.

A caller may hand in its own open connection as
``config.attributes["connection"]`` (Alembic cookbook: "sharing a connection");
alembic-operator's migrate step does so to hold an advisory lock and set
``lock_timeout``. ``config.attributes["configure_logger"] = False`` keeps this
file from replacing the caller's logging setup.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
from logging.config import fileConfig

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from alembic import context

config = context.config

# Logging from alembic.ini, unless the caller has its own (or the ini has no logging sections).
if (config.config_file_name is not None and config.attributes.get("configure_logger", True)
        and config.file_config.has_section("loggers")):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def import_models(package_name: str | None) -> None:
    """Import the models package and every module below it, so all tables reach the metadata."""
    if not package_name:
        return
    package = importlib.import_module(package_name)
    for module in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=package.__name__ + "."):
        importlib.import_module(module.name)


import_models(config.get_main_option("models_package"))

target_metadata = SQLModel.metadata
TRANSACTION_PER_MIGRATION = _truthy(config.get_main_option("transaction_per_migration"))
VERSION_TABLE = config.get_main_option("version_table") or "alembic_version"
VERSION_TABLE_SCHEMA = config.get_main_option("version_table_schema") or None


def get_url() -> str | None:
    """DATABASE_URL (or sqlalchemy.url) in the asyncpg form SQLAlchemy's async engine needs."""
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url or url.startswith("driver://"):
        return None
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def _common_options() -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "transaction_per_migration": TRANSACTION_PER_MIGRATION,
        "version_table": VERSION_TABLE,
        "version_table_schema": VERSION_TABLE_SCHEMA,
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    """``--sql`` mode: write the SQL instead of running it; needs no database."""
    url = get_url()
    # Offline mode only needs the dialect: without a URL, PostgreSQL is assumed.
    target = {"url": url} if url else {"dialect_name": "postgresql"}
    context.configure(literal_binds=True, dialect_opts={"paramstyle": "named"}, **target, **_common_options())
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **_common_options())
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = get_url()
    if url is None:
        raise RuntimeError("DATABASE_URL is not set")
    connectable = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
