"""PostgreSQL through asyncpg, behind a small synchronous facade for the steps.

Steps are plain blocking functions run once in a Job pod; each
:class:`Connection` owns a private event loop, so a step can keep a
transaction open (the exported snapshot pg_dump uses) while it waits on a
subprocess, without threading asyncio through every layer.

Must not: put a password in a message (errors name host, port, database and
user only), or run DDL other than CREATE/DROP DATABASE for the scratch copy.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import time
from typing import Any

import asyncpg

from alembic_operator.api import errors, redact, text
from alembic_operator.job.checks import writecounters
from alembic_operator.job.database import fingerprint, identifiers, urls

CONNECT_TIMEOUT = 10.0

#: Schemas that belong to PostgreSQL itself; everything else is the application's.
SYSTEM_SCHEMAS_SQL = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

#: Ordinary tables of the application (partitions counted, partitioned parents not,
#: so totals never double count; extension member tables are the extension's).
USER_TABLES_SQL = f"""
SELECT n.nspname AS schema, c.relname AS name, c.oid AS oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {SYSTEM_SCHEMAS_SQL}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def quote_ident(name: str) -> str:
    """A correct client-side quoter for SQL sent over asyncpg (never for psql input: see loading)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


class Connection:
    """One asyncpg connection driven synchronously."""

    def __init__(
        self, *, loop: asyncio.AbstractEventLoop, conn: asyncpg.Connection, url: urls.DatabaseURL, database: str
    ) -> None:
        self._loop = loop
        self._conn = conn
        self.url = url
        self.database = database

    def _run(self, coro: Any) -> Any:
        try:
            return self._loop.run_until_complete(coro)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StepError(
                f"database {self.database!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        except (TimeoutError, OSError) as exc:
            raise errors.DatabaseUnreachable(
                f"lost the connection to {self.url.host}:{self.url.port}: {type(exc).__name__}"
            ) from None

    def fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return list(self._run(self._conn.fetch(sql, *params)))

    def fetchval(self, sql: str, *params: Any) -> Any:
        return self._run(self._conn.fetchval(sql, *params))

    def execute(self, sql: str, *params: Any) -> None:
        self._run(self._conn.execute(sql, *params))

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._conn.close(timeout=5))
        except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
            self._conn.terminate()
        finally:
            self._loop.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_args(url: urls.DatabaseURL, *, database: str | None = None) -> dict[str, Any]:
    """``asyncpg.connect`` arguments for ``url``: every step's asyncpg connection is made from these.

    The DSN carries only the TLS parameters (asyncpg reads sslmode, sslrootcert,
    sslcert and sslkey as libpq does), the password goes as its own argument.
    """
    return {"dsn": url.tls_dsn(database), "password": url.password}


def describe_connect_error(exc: BaseException) -> str:
    """Why a connection failed, in one line without secrets (TLS refusals and certificate errors included)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or text.first_line(exc)}"
    if isinstance(exc, ConnectionError) and "SSL" in str(exc):
        return f"the server does not accept TLS, which the URL requires ({text.first_line(exc)})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return redact.redact(text.first_line(exc))


def connect(*, url: urls.DatabaseURL, database: str | None = None, timeout: float = CONNECT_TIMEOUT) -> Connection:
    """Connect or raise DatabaseUnreachable naming host, port, database and the cause."""
    name = database or url.database
    where = f"{url.host}:{url.port}/{name}"
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(asyncpg.connect(**connect_args(url, database=name), timeout=timeout))
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        loop.close()
        raise errors.DatabaseUnreachable(f"authentication failed for user {url.user!r} on {where}") from None
    except asyncpg.InvalidCatalogNameError:
        loop.close()
        raise errors.DatabaseUnreachable(f"database {name!r} does not exist on {url.host}:{url.port}") from None
    except asyncpg.PostgresError as exc:
        loop.close()
        raise errors.DatabaseUnreachable(f"cannot connect to {where}: {text.first_line(exc)}") from None
    except TimeoutError:
        loop.close()
        raise errors.DatabaseUnreachable(f"timed out after {timeout:.0f}s connecting to {where}") from None
    except socket.gaierror:
        loop.close()
        raise errors.DatabaseUnreachable(f"cannot resolve database host {url.host!r}") from None
    except (OSError, asyncpg.InterfaceError) as exc:
        loop.close()
        raise errors.DatabaseUnreachable(f"cannot connect to {where}: {describe_connect_error(exc)}") from None
    return Connection(loop=loop, conn=conn, url=url, database=name)


# ---- queries the steps share ------------------------------------------------


def server_version_num(conn: Connection) -> int:
    """E.g. 150018 for 15.18 (SHOW server_version_num)."""
    return int(conn.fetchval("SHOW server_version_num"))


def server_version(conn: Connection) -> str:
    return str(conn.fetchval("SHOW server_version")).split()[0]


def database_size(conn: Connection) -> int:
    return int(conn.fetchval("SELECT pg_database_size(current_database())"))


def user_tables(conn: Connection) -> list[tuple[str, str]]:
    """(schema, table) of every application table, sorted."""
    return [(r["schema"], r["name"]) for r in conn.fetch(USER_TABLES_SQL)]


def exact_counts(conn: Connection) -> dict[str, int]:
    """``{label: count(*)}`` of every application table, in the current snapshot (labels: see identifiers)."""
    counts: dict[str, int] = {}
    for schema, table in user_tables(conn):
        counts[identifiers.label(schema, table)] = int(
            conn.fetchval(f"SELECT count(*) FROM {qualified(schema, table)}")
        )
    return counts


def estimated_counts(conn: Connection) -> dict[str, int]:
    """Row estimates without scanning: pg_class.reltuples, or n_live_tup where never analysed."""
    rows = conn.fetch(f"""
        SELECT t.schema, t.name,
               CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                    ELSE coalesce(s.n_live_tup, 0) END AS rows
        FROM ({USER_TABLES_SQL}) t JOIN pg_class c ON c.oid = t.oid
        LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid""")
    return {identifiers.label(r["schema"], r["name"]): int(r["rows"]) for r in rows}


WRITE_STATS_SQL = f"""
SELECT t.schema, t.name, t.oid, s.n_tup_ins, s.n_tup_upd, s.n_tup_del, s.n_live_tup
FROM ({USER_TABLES_SQL}) t JOIN pg_stat_user_tables s ON s.relid = t.oid"""

#: The current transaction's own write counts (pg_stat_xact_*: not yet in pg_stat_user_tables).
#: Run on the migration's connection right before COMMIT to tell its writes from everyone else's.
XACT_WRITES_SQL = """
SELECT schemaname AS schema, relname AS name, n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"""


#: Other sessions of this database that may hold write counts not yet published: any but a client
#: backend idle for ``QUIET_IDLE_SECONDS`` (a session of another role shows no state without
#: pg_read_all_stats: it counts as busy). PostgreSQL 15+ only: before it, an idle backend kept them.
OTHERS_UNPUBLISHED_SQL = """
SELECT count(*) FROM pg_catalog.pg_stat_activity a
WHERE a.datid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND a.pid <> pg_catalog.pg_backend_pid()
  AND (a.backend_type IS DISTINCT FROM 'client backend' OR a.state IS DISTINCT FROM 'idle'
       OR a.state_change IS NULL
       OR a.state_change > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1))"""


def _stats_rows(rows: Any) -> dict[str, dict[str, int]]:
    return {
        identifiers.label(r["schema"], r["name"]): {
            "n_tup_ins": int(r["n_tup_ins"]),
            "n_tup_upd": int(r["n_tup_upd"]),
            "n_tup_del": int(r["n_tup_del"]),
            "n_live_tup": int(r["n_live_tup"]),
            "relid": int(r["oid"]),
        }
        for r in rows
    }


def write_stats(conn: Connection) -> dict[str, dict[str, int]]:
    """Cumulative write counters per table, to detect later writes by others (foreign writes)."""
    if server_version_num(conn) >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")
    return _stats_rows(conn.fetch(WRITE_STATS_SQL))


def settled_write_stats(conn: Connection, *, until_published: bool = False) -> dict[str, dict[str, int]]:
    """:func:`settled_write_stats_async` on this module's connection.

    Call it outside a transaction, or it reads one cached snapshot (stats_fetch_consistency).
    """
    settled: dict[str, dict[str, int]] = conn._run(
        settled_write_stats_async(conn._conn, until_published=until_published)
    )
    return settled


async def settled_write_stats_async(
    conn: asyncpg.Connection, *, polls: int = writecounters.SETTLE_MAX_POLLS, until_published: bool = False
) -> dict[str, dict[str, int]]:
    """The counters once they stop moving (see :mod:`alembic_operator.job.checks.writecounters`): poll every
    ~1.2 s, at most ``polls`` reads; a table written continuously keeps the last read.

    PostgreSQL 15+: when no other session of the database can hold unpublished counts
    (:data:`OTHERS_UNPUBLISHED_SQL`), a second read right after that check ends it: equal reads
    around it mean no session published counts meanwhile (one that wrote and disconnected would).
    ``until_published`` (the restore: what it misses, it discards) polls on, stable counters or
    not, until no session can hold any or :data:`~writecounters.PUBLISH_WAIT_SECONDS` have passed.
    """
    version = int(await conn.fetchval("SHOW server_version_num"))
    publishing = version >= 150000  # before 15 an idle backend kept its counts: no session is ever known done

    async def read() -> dict[str, dict[str, int]]:
        if publishing:
            await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return _stats_rows(await conn.fetch(WRITE_STATS_SQL))

    async def others_published() -> bool:
        return publishing and not await conn.fetchval(OTHERS_UNPUBLISHED_SQL, float(writecounters.QUIET_IDLE_SECONDS))

    deadline = time.monotonic() + writecounters.PUBLISH_WAIT_SECONDS
    previous: writecounters.Counters | None = None
    current: dict[str, dict[str, int]] = {}
    for poll in itertools.count():
        if poll:
            await asyncio.sleep(writecounters.SETTLE_INTERVAL_SECONDS)
        current = await read()
        counters = _counters_only(current)
        if await others_published():
            again = await read()
            if _counters_only(again) == counters:
                return again
            current, counters = again, _counters_only(again)
        elif until_published and publishing and time.monotonic() < deadline:
            previous = counters
            continue
        if writecounters.settled(previous, counters) or poll + 1 >= max(1, polls):
            break
        previous = counters
    return current


def _counters_only(stats: writecounters.Counters) -> dict[str, dict[str, int]]:
    """n_live_tup moves with vacuum; only the write counters decide whether the figures settled."""
    return {t: {c: v[c] for c in writecounters.COUNTERS} for t, v in stats.items()}


def alembic_revision(conn: Connection) -> str | None:
    """The Alembic revision (heads joined by ','), or None when there is no alembic_version table."""
    if conn.fetchval("SELECT to_regclass('alembic_version')") is None:
        return None
    rows = conn.fetch("SELECT version_num FROM alembic_version ORDER BY 1")
    return ",".join(r["version_num"] for r in rows) or None


def create_database(conn: Connection, *, name: str) -> None:
    try:
        conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    except errors.StepError as exc:
        raise errors.StepError(
            f"cannot create scratch database {name!r} ({exc.message}); grant CREATEDB or pass --scratch-url"
        ) from None


def drop_database(conn: Connection, *, name: str) -> None:
    """Drop even with sessions left behind (PostgreSQL 13+ FORCE)."""
    force = " WITH (FORCE)" if server_version_num(conn) >= 130000 else ""
    conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}{force}")


def identity(conn: Connection) -> dict[str, str | None]:
    """Which database this is: the server's ``system_identifier`` (pg_control_system()) and the database name.

    Recorded in the manifest at backup time; the restore refuses a backup of another database.
    ``systemIdentifier`` is None where the role may not call pg_control_system().
    """
    try:
        sid: str | None = str(conn.fetchval("SELECT system_identifier::text FROM pg_catalog.pg_control_system()"))
    except errors.StepError:
        sid = None
    return {"systemIdentifier": sid, "database": str(conn.fetchval("SELECT pg_catalog.current_database()"))}


def state(conn: Connection) -> dict[str, Any]:
    """The schema fingerprint and exact row counts: equal before and after means the database is as it was."""
    return {"schema": conn._run(fingerprint.take(conn._conn)), "rows": exact_counts(conn)}
