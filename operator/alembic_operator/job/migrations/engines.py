"""Point a user's own env.py at the run's database, in the driver it was written for.

An env.py as ``alembic init`` writes it builds its engine from the ini's
``sqlalchemy.url``; the step sets that option (in memory only, the file is
never written) to the run's URL. The driver is the one the env needs: the
one DATABASE_URL names (``postgresql+asyncpg://``...), else the one the
ini's own URL names, else asyncpg when env.py builds an async engine, else
SQLAlchemy's default (psycopg, in SQLAlchemy 2.1). An env.py that reads another variable gets
the URL there too (``--url-env NAME``: the run maps its Secret to the name
the app expects).

TLS: an asyncpg URL carries no TLS parameter (SQLAlchemy would pass them to
asyncpg as unknown arguments), so an engine the env.py builds itself would
fall back to asyncpg's ``prefer`` — no certificate check, no client
certificate, and clear text when TLS fails. For asyncpg the URL's sslmode,
sslrootcert, sslcert and sslkey therefore go into this (one-step) process's
PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY, which asyncpg reads as libpq
does; the libpq drivers have them in their URL already.

Must not: write the ini file, or log the URL with its password.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic_operator.api import errors
from alembic_operator.job.database import urls

_ASYNC_ENV = re.compile(r"async_engine_from_config|create_async_engine|AsyncEngine")
#: What an offline env.py is given when there is no database: a URL nothing connects to.
OFFLINE_PLACEHOLDER = "postgresql://offline@localhost/offline"
_DRIVERS = {"psycopg2", "psycopg", "asyncpg", "pg8000", "psycopg2cffi"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--flask-app`` and ``--url-env``: how the app's own env.py finds its app and its URL (plan and migrate)."""
    parser.add_argument(
        "--flask-app",
        default=os.environ.get("FLASK_APP"),
        metavar="IMPORT",
        help="run env.py inside this Flask app's context (Flask-Migrate; default $FLASK_APP), e.g. app:create_app",
    )
    parser.add_argument(
        "--url-env",
        default=os.environ.get("ALEMBIC_OPERATOR_URL_ENV") or None,
        metavar="NAME",
        help="also give the database URL to env.py as this environment variable (the one the app reads; "
        "default $ALEMBIC_OPERATOR_URL_ENV, e.g. set in the app image)",
    )


@contextlib.contextmanager
def app_context(flask_app: str | None) -> Iterator[None]:
    """Inside the Flask app's application context when ``flask_app`` names one (``module:create_app``).

    A Flask-Migrate env.py reads its engine and metadata from ``current_app``; ``flask db upgrade``
    pushes the context, so the step does the same (Flask is imported only then).
    """
    if not flask_app:
        yield
        return
    from flask.cli import ScriptInfo

    try:
        app = ScriptInfo(app_import_path=flask_app).load_app()
    except Exception as exc:  # noqa: BLE001 - NoAppException, an import error of the app...
        raise errors.InvalidInput(f"cannot load the Flask app {flask_app!r}: {type(exc).__name__}: {exc}") from None
    with app.app_context():
        yield


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


def point_at(config: Config, url: urls.DatabaseURL | None, *, url_env: str | None = None) -> None:
    """Set ``sqlalchemy.url`` (escaped for the ini's interpolation), for asyncpg the URL's TLS as PGSSL*,
    and, if asked, ``$url_env``.

    Without a URL (``plan --from REV``, offline) a placeholder on localhost stands in: offline
    rendering needs only the dialect, and an env.py that insists on its variable still finds one.
    """
    raw = os.environ.get("DATABASE_URL")
    driver = driver_for(config, raw)
    if url is None:
        full = ("postgresql+" + driver if driver else "postgresql") + OFFLINE_PLACEHOLDER[len("postgresql") :]
        raw = raw or OFFLINE_PLACEHOLDER
    else:
        full = sqlalchemy_url(url, driver)
    config.set_main_option("sqlalchemy.url", full.replace("%", "%%"))
    if url is not None and driver == "asyncpg":  # the URL's TLS for an engine env.py builds itself (module docstring)
        os.environ.update({"PG" + name.upper(): value for name, value in url.params.items() if name in urls.TLS_PARAMS})
    if url_env and (url is not None or url_env not in os.environ):
        os.environ[url_env] = raw or full
