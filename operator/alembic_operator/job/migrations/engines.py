"""Point a user's own env.py at the run's database, in the driver it was written for.

An env.py as ``alembic init`` writes it builds its engine from the ini's
``sqlalchemy.url``; the step sets that option (in memory only, the file is
never written) to the run's URL. The driver is the one the env needs: the
one DATABASE_URL names (``postgresql+asyncpg://``...), else the one the
ini's own URL names, else asyncpg when env.py builds an async engine, else
SQLAlchemy's default (psycopg, in SQLAlchemy 2.1). An env.py that reads another variable gets
the URL there too (``--url-env NAME``: the run maps its Secret to the name
the app expects).

Must not: write the ini file, or log the URL with its password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic_operator.job.database import urls

_ASYNC_ENV = re.compile(r"async_engine_from_config|create_async_engine|AsyncEngine")
_DRIVERS = {"psycopg2", "psycopg", "asyncpg", "pg8000", "psycopg2cffi"}


def env_source(config: Config) -> str | None:
    """The text of the script directory's env.py (None when there is none to read)."""
    try:
        folder = Path(ScriptDirectory.from_config(config).dir)
        return (folder / "env.py").read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001 - a missing or unreadable env.py fails later, in Alembic's own words
        return None


def driver_for(config: Config, raw_url: str | None) -> str | None:
    """The driver the env's engine must use (see the module docstring); None: SQLAlchemy's default."""
    for candidate in (raw_url, config.get_main_option("sqlalchemy.url")):
        scheme = urlsplit(candidate or "").scheme
        name, _, driver = scheme.partition("+")
        if name in ("postgresql", "postgres") and driver in _DRIVERS:
            return driver
    env = env_source(config) or ""
    return "asyncpg" if _ASYNC_ENV.search(env) else None


def sqlalchemy_url(url: urls.DatabaseURL, driver: str | None) -> str:
    """The run's URL as SQLAlchemy takes it with ``driver`` (asyncpg gets no libpq-only parameters)."""
    full = url.asyncpg() if driver == "asyncpg" else url.libpq()
    return ("postgresql+" + driver if driver else "postgresql") + full[full.index("://") :]


def point_at(config: Config, url: urls.DatabaseURL, *, url_env: str | None = None) -> None:
    """Set ``sqlalchemy.url`` (escaped for the ini's interpolation) and, if asked, ``$url_env``."""
    raw = os.environ.get("DATABASE_URL")
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url, driver_for(config, raw)).replace("%", "%%"))
    if url_env:
        os.environ[url_env] = raw or url.libpq()
