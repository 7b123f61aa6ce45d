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
2. Connect with asyncpg (TLS as the URL says) only to read the server's major.
   A connection that fails is not this check's to report: the step's own
   connection fails next, with the step's message (a server without TLS, a
   wrong password, a timeout the wait step retries).
3. Ask :func:`alembic_operator.job.database.pgtools.without_ssl` which tools
   of that major lack SSL; refuse (ToolMissing) when any kind has none with it.

Must not: write to the database, or refuse for any other reason (a missing
tool is the backup's and restore's own refusal).
"""

from __future__ import annotations

from alembic_operator.api import errors
from alembic_operator.job.database import pgtools, postgres, urls


def refuse_without_ssl_tools(url: urls.DatabaseURL | None) -> None:
    """Raise ToolMissing when ``url`` requires TLS and the client tools of its server's major lack SSL."""
    if url is None or not url.requires_tls:
        return
    try:
        with postgres.connect(url=url) as conn:
            major = postgres.server_version_num(conn) // 10000
    except errors.StepError:
        return  # the step's own connection says why (step 2)
    lacking = pgtools.without_ssl(server_major=major)
    if not lacking:
        return
    names = " and ".join(dict.fromkeys(t.name for t in lacking))
    found = ", ".join(sorted({f"{t.name} {t.version} ({t.path})" for t in lacking}))
    raise errors.ToolMissing(
        f"DATABASE_URL requires TLS (sslmode={url.sslmode}) but the {names} here for PostgreSQL {major} "
        f"{'is' if len(lacking) == 1 else 'are'} built without SSL ({found}), so no backup or restore of this "
        "database could run over TLS and a migration could not be undone; refused at start, the database was "
        "not touched. Use client tools built with SSL (PG_BIN_DIRS) or a server major whose tools have it"
    )
