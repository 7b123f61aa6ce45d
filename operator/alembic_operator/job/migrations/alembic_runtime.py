"""Run Alembic programmatically: online on a connection we own, offline to a string.

Online (migrate; the downgrade step too, ``direction='downgrade'``): an env.py
that reads ``config.attributes["connection"]``
(the Alembic cookbook's connection sharing, our template) receives our
SQLAlchemy connection, opened with ``lock_timeout`` as a startup setting and
without starting a transaction, so ``transaction_per_migration`` still commits
per revision. Any other env.py (``alembic init``'s templates, Flask-Migrate's,
an app's own) runs unmodified in a worker thread without an event loop, with
``sqlalchemy.url`` pointed at the run's database (:mod:`.engines`). Either way
SQLAlchemy class-level events (:mod:`.observing`) mark every session and feed
a :class:`CommitWatch`: every COMMIT and switch to AUTOCOMMIT (together with
the version table and the schema fingerprint this says whether a failed run
committed anything) and each transaction's own write counts, so a later
restore can tell the migration's writes from the application's (see
:mod:`alembic_operator.job.checks.writecounters`). A log filter notes the
revision that was running.

Offline (plan): ``alembic upgrade FROM:TO --sql`` into a buffer (one revision
at a time: :mod:`.rendering`).

Must not: decide policy (what a failure means for the run is migrate's job).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any, Literal

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic_operator.api import errors, redact
from alembic_operator.job.database import postgres as pg
from alembic_operator.job.database import urls
from alembic_operator.job.migrations import engines, observing
from alembic_operator.job.migrations.observing import CommitWatch as CommitWatch

CONNECT_TIMEOUT = 10.0
APPLICATION_NAME = "alembic-operator"
_RUNNING = re.compile(r"Running (?P<direction>upgrade|downgrade) (?P<from>[^\s,]*) -> (?P<to>[^\s,]+)")
_TAKES_CONNECTION = re.compile(r"""attributes\s*(?:\.get\(|\[)\s*["']connection["']""")
#: Which way :func:`upgrade` runs Alembic: the migrate step upgrades, the downgrade step (a rollback) downgrades.
Direction = Literal["upgrade", "downgrade"]
_COMMANDS: dict[Direction, Callable[[Config, str], None]] = {"upgrade": command.upgrade, "downgrade": command.downgrade}
_LOCK_TIMEOUT = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def validate_lock_timeout(value: str) -> str:
    """``10s``, ``500ms``, ``1min``, ``0`` (no limit): InvalidInput otherwise."""
    duration = value.strip()
    if not _LOCK_TIMEOUT.match(duration):
        raise errors.InvalidInput(f"--lock-timeout {value!r} is not a duration like 10s, 500ms or 1min")
    return duration


async def connect(
    url: urls.DatabaseURL, *, application: str = APPLICATION_NAME, settings: dict[str, str] | None = None
) -> Any:
    """An asyncpg connection; DatabaseUnreachable (naming host, port, database, user; never the password)."""
    where = f"{url.redacted()}"
    try:
        return await asyncpg.connect(
            **pg.connect_args(url),
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": application, **(settings or {})},
        )
    except asyncpg.InvalidPasswordError:
        raise errors.DatabaseUnreachable(
            f"cannot connect to {where}: password authentication failed for user {url.user!r}"
        ) from None
    except asyncpg.InvalidCatalogNameError:
        raise errors.DatabaseUnreachable(
            f"cannot connect to {where}: database {url.database!r} does not exist"
        ) from None
    except (TimeoutError, OSError, socket.gaierror, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = pg.describe_connect_error(exc)
        raise errors.DatabaseUnreachable(f"cannot connect to {where}: {reason}") from None


class _RunningFilter(logging.Filter):
    """Notes each "Running upgrade A -> B" that Alembic logs, and lets it through.

    A filter, not a handler: an env.py's ``fileConfig()`` drops the handlers of
    Alembic's loggers but keeps their filters (it still needs them at INFO, as
    the generated alembic.ini sets them; else the failed revision is the first pending one).
    """

    def __init__(self, watch: CommitWatch) -> None:
        super().__init__()
        self.watch = watch

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            match = _RUNNING.search(record.getMessage())
        except Exception:  # noqa: BLE001 - never break the migration over a log line
            return True
        if match:  # the revision applied, or the one undone
            revision = match.group("to" if match.group("direction") == "upgrade" else "from")
            self.watch.running = revision
            self.watch.started.append(revision)
        return True


async def upgrade(
    config: Config,
    *,
    url: urls.DatabaseURL,
    target: str,
    lock_timeout: str,
    watch: CommitWatch,
    application: str = f"{APPLICATION_NAME} migrate",
    url_env: str | None = None,
    concurrent_lock_timeout: str = "5min",
    flask_app: str | None = None,
    direction: Direction = "upgrade",
) -> None:
    """``alembic upgrade target`` (or ``downgrade``) with ``lock_timeout`` and ``application_name`` on every session.

    An env.py that takes ``config.attributes["connection"]`` gets a connection
    of ours. Any other env.py runs as it is, in a worker thread without an event
    loop (so its own ``asyncio.run`` works), with ``sqlalchemy.url`` pointed at
    the run's database; class-level events (:mod:`.observing`) mark and watch
    every engine it creates. Exceptions from Alembic, SQLAlchemy or the scripts
    propagate unchanged; ``watch`` says afterwards what was committed and which
    revision was running.
    """
    loggers = _enabled_loggers()
    try:
        observe = observing.observing(
            watch, application=application, lock_timeout=lock_timeout, concurrent_lock_timeout=concurrent_lock_timeout
        )
        with observe, _running_log(watch):
            if takes_connection(config):
                await _upgrade_shared(
                    config, url=url, target=target, lock_timeout=lock_timeout, app=application, direction=direction
                )
            else:
                engines.point_at(config, url, url_env=url_env)
                await asyncio.to_thread(_upgrade_in_app, config, target, flask_app, direction)
    finally:
        for logger in loggers:  # an env.py's fileConfig() disables the loggers it does not name
            logger.disabled = False


async def _upgrade_shared(
    config: Config, *, url: urls.DatabaseURL, target: str, lock_timeout: str, app: str, direction: Direction
) -> None:
    engine = create_async_engine(
        "postgresql+asyncpg://",
        poolclass=pool.NullPool,
        async_creator=lambda: asyncpg.connect(
            **pg.connect_args(url),
            timeout=CONNECT_TIMEOUT,
            server_settings={"lock_timeout": lock_timeout, "application_name": app},
        ),
    )
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_sync, config, target, direction)
    finally:
        await engine.dispose()


def takes_connection(config: Config) -> bool:
    """Whether the env.py reads ``config.attributes["connection"]`` (the cookbook's connection sharing)."""
    env = engines.env_source(config)
    return env is not None and _TAKES_CONNECTION.search(env) is not None


@contextlib.contextmanager
def _running_log(watch: CommitWatch) -> Iterator[None]:
    noting = _RunningFilter(watch)
    migration_log = logging.getLogger("alembic.runtime.migration")
    previous_level = migration_log.level
    migration_log.addFilter(noting)
    if not migration_log.isEnabledFor(logging.INFO):
        migration_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        migration_log.removeFilter(noting)
        migration_log.setLevel(previous_level)


def _enabled_loggers() -> list[logging.Logger]:
    known = logging.Logger.manager.loggerDict.values()
    return [lg for lg in known if isinstance(lg, logging.Logger) and not lg.disabled]


def _upgrade_in_app(config: Config, target: str, flask_app: str | None, direction: Direction) -> None:
    with engines.app_context(flask_app):  # in the worker thread: Flask's context is per thread
        _COMMANDS[direction](config, target)


def _upgrade_sync(connection: Connection, config: Config, target: str, direction: Direction) -> None:
    config.attributes["connection"] = connection
    try:
        _COMMANDS[direction](config, target)
    finally:
        config.attributes.pop("connection", None)


def offline_sql(config: Config, *, start: str | None, target: str) -> str:
    """The SQL ``alembic upgrade [start:]target --sql`` prints (no database needed)."""
    buffer = io.StringIO()
    config.output_buffer = buffer
    try:
        command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    finally:
        config.output_buffer = None
    return buffer.getvalue()


def describe_failure(exc: BaseException) -> str:
    """One line for an exception raised by a migration: the database's own message when there is one."""
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None) or orig
    if cause is not None and isinstance(cause, asyncpg.PostgresError):
        sqlstate = getattr(cause, "sqlstate", None)
        detail = (getattr(cause, "message", None) or str(cause)).strip()
        name = type(cause).__name__
        return _first_line(f"{name} ({sqlstate}): {detail}" if sqlstate else f"{name}: {detail}")
    if cause is not None and cause is not exc:
        return _first_line(f"{type(cause).__name__}: {cause}")
    return _first_line(f"{type(exc).__name__}: {exc}")


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether the migration failed because ``lock_timeout`` expired (SQLSTATE 55P03)."""
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None) or orig
    return getattr(cause, "sqlstate", None) == "55P03"


def _first_line(text: str, limit: int = 400) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text.strip())
    line = re.sub(r"^\([\w.]+\)\s*", "", line)
    return redact.redact(line if len(line) <= limit else line[: limit - 3] + "...")
