"""Refuse, at the start of every step, a run whose backup or restore could never connect over TLS.

Why every step, not only backup and restore: a run is only safe when a restore
could undo its migration. When DATABASE_URL requires TLS (``sslmode`` — or
SQLAlchemy-asyncpg's ``ssl`` — ``require``, ``verify-ca`` or ``verify-full``)
and the pg_dump, pg_restore or psql here for the server's major were built
without SSL, no backup or restore of that database can ever run over TLS. Plan,
migrate, wait, verify, drift and rehearse use asyncpg, which has TLS, so they
would work — and a run would then migrate a database it could never restore.
So every step asks the same question first and refuses before it reads or
writes anything, naming the major and why.

1. Nothing to check unless the URL requires TLS (no connection is made).
2. Connect with asyncpg, TLS as the URL says, only to read the server's major.
   TLS itself failing (a server without TLS, a certificate that does not
   verify) fails the step here, clearly and identically for every step: the
   URL's requirement cannot be met, and no step may go on to connect some
   other way (an app's own env.py builds its engine itself). Any other failure
   (a wrong password, a server not up yet) is left to the step's own
   connection, which reports it in its words (the wait step retries it).
3. Which tools of that major lack SSL: when the operator said so
   (``ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL``, the majors :func:`majors_without_ssl`
   found in the operator's image at its start), that is the answer — a step in
   the app's image (plan, migrate, drift) has no client tools to ask, and the
   backup and restore run with the operator image's. Without it (a step run by
   hand), :func:`alembic_operator.job.database.pgtools.without_ssl` asks the
   tools here. Refuse (ToolMissing) when any kind has none with SSL.

Must not: write to the database, or refuse for any other reason (a missing
tool is the backup's and restore's own refusal).
"""

from __future__ import annotations

import asyncio
import os
import ssl

import asyncpg

from alembic_operator.api import constants, errors
from alembic_operator.job.database import pgtools, postgres, urls

_REFUSED = (
    "refused at start, the database was not touched. "
    "Use client tools built with SSL (PG_BIN_DIRS) or a server major whose tools have it"
)


def majors_without_ssl() -> list[int]:
    """The majors of the client tools here for which pg_dump, pg_restore or psql has no build with SSL.

    The operator asks this once at start-up (``cli``) of its own image, where the backup and restore run,
    and passes the answer to every step as ``ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL``.
    """
    majors = sorted({t.major for name in pgtools.RUN_TOOLS for t in pgtools.discover(name)})
    return [major for major in majors if pgtools.without_ssl(server_major=major)]


def refuse_without_ssl_tools(url: urls.DatabaseURL | None) -> None:
    """Raise ToolMissing when ``url`` requires TLS and the client tools of its server's major lack SSL
    (DatabaseUnreachable when TLS itself fails)."""
    if url is None or not url.requires_tls:
        return
    major = asyncio.run(_server_major(url))
    if major is None:
        return
    told = os.environ.get(constants.ENV_TOOLS_WITHOUT_SSL)
    if told is not None:
        if major in {int(m) for m in told.split(",") if m.strip()}:
            raise errors.ToolMissing(
                f"DATABASE_URL requires TLS (sslmode={url.sslmode}) but the operator image's pg_dump, pg_restore "
                f"and psql for PostgreSQL {major} are built without SSL (found by the operator at its start, "
                f"{constants.ENV_TOOLS_WITHOUT_SSL}), so no backup or restore of this database could run over "
                f"TLS and a migration could not be undone; {_REFUSED}"
            )
        return
    lacking = pgtools.without_ssl(server_major=major)
    if not lacking:
        return
    names = " and ".join(dict.fromkeys(t.name for t in lacking))
    found = ", ".join(sorted({f"{t.name} {t.version}" for t in lacking}))
    found += " in " + ", ".join(sorted({os.path.dirname(t.path) for t in lacking}))
    raise errors.ToolMissing(
        f"DATABASE_URL requires TLS (sslmode={url.sslmode}) but the {names} here for PostgreSQL {major} "
        f"{'is' if len(lacking) == 1 else 'are'} built without SSL ({found}), so no backup or restore of this "
        f"database could run over TLS and a migration could not be undone; {_REFUSED}"
    )


async def _server_major(url: urls.DatabaseURL) -> int | None:
    """The server's major over TLS; None when the connection fails for a reason other than TLS (step 2)."""
    try:
        conn = await asyncpg.connect(**postgres.connect_args(url), timeout=postgres.CONNECT_TIMEOUT)
    except (ssl.SSLError, ConnectionError) as exc:
        if isinstance(exc, ssl.SSLError) or "SSL" in str(exc):
            raise errors.DatabaseUnreachable(
                f"cannot connect to {url.host}:{url.port}/{url.database} with TLS (sslmode={url.sslmode}): "
                f"{postgres.describe_connect_error(exc)}; nothing was started"
            ) from None
        return None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
