"""Database URLs: parse the user's DATABASE_URL once, hand each consumer its form.

Users give ``postgresql://`` or ``postgresql+asyncpg://`` (also ``postgres://``).
Alembic's async env needs the asyncpg form; libpq tools (pg_dump, pg_restore)
need the plain form; humans get the redacted one.

1. The password may come in the user part or as ``?password=`` (libpq decodes
   ``%``-encoded parameter names, so ``?%70assword=`` is one too): either way
   it becomes :attr:`DatabaseURL.password` and leaves the query, so no form
   but :meth:`DatabaseURL.libpq` with the password ever carries it, and the
   tools get it in PGPASSWORD (:mod:`alembic_operator.job.database.pgtools`).
2. The TLS parameters (:data:`TLS_PARAMS`) are kept and handed to asyncpg and
   to the client tools alike, so every step connects with the same TLS
   (``ssl=``, as SQLAlchemy-asyncpg users write sslmode, becomes ``sslmode=``).

Pure: no I/O. Must not: put the password in a message, or drop a TLS parameter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from alembic_operator.api import errors

_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}

#: libpq's TLS parameters that every step honours, for asyncpg and for the client tools.
TLS_PARAMS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
#: libpq's sslmode values, weakest first.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: The modes under which a connection without TLS must fail.
TLS_REQUIRED = frozenset({"require", "verify-ca", "verify-full"})


def split_query(query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` → pairs, names and values ``%``-decoded as libpq decodes them (``+`` stays ``+``)."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise errors.InvalidInput(f"DATABASE_URL query parameter {unquote(name)!r} has no value")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def join_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='/')}" for name, value in pairs)


@dataclass(frozen=True)
class DatabaseURL:
    """A validated PostgreSQL URL; ``query`` holds its parameters but never the password."""

    user: str
    password: str | None
    host: str
    port: int
    database: str
    query: str

    @classmethod
    def parse(cls, url: str | None) -> DatabaseURL:
        """Validate ``url``; raise InvalidInput naming what is wrong (never echoing the password)."""
        if not url:
            raise errors.InvalidInput("DATABASE_URL is not set")
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 5432
        except ValueError as exc:
            raise errors.InvalidInput(f"DATABASE_URL is malformed: {exc}") from None
        if parts.scheme not in _SCHEMES:
            raise errors.InvalidInput(
                f"DATABASE_URL scheme {parts.scheme or '(none)'!r} is not PostgreSQL; "
                "use postgresql:// or postgresql+asyncpg://"
            )
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname:
            raise errors.InvalidInput("DATABASE_URL has no host")
        if not database:
            raise errors.InvalidInput("DATABASE_URL names no database (postgresql://user@host/DBNAME)")
        password = unquote(parts.password) if parts.password else None
        kept = []
        for name, value in split_query(parts.query):
            if name == "password":
                password = value if password is None else password
            elif name == "sslpassword":
                raise errors.InvalidInput(
                    "DATABASE_URL sets sslpassword: a client key's passphrase cannot be kept off the tools' "
                    "command lines; mount an unencrypted key from a Secret and name it in sslkey"
                )
            elif name == "ssl":  # SQLAlchemy-asyncpg's spelling: one sslmode for asyncpg and the tools alike
                kept.append(("sslmode", value))
            else:
                kept.append((name, value))
        kept = list(dict.fromkeys(kept))
        if len({v for k, v in kept if k == "sslmode"}) > 1:
            raise errors.InvalidInput("DATABASE_URL sets sslmode (or ssl) twice, differently: give one")
        sslmode = dict(kept).get("sslmode", "prefer")
        if sslmode not in SSLMODES:
            raise errors.InvalidInput(f"DATABASE_URL sslmode {sslmode!r} is not one of {', '.join(SSLMODES)}")
        return cls(
            user=unquote(parts.username or ""),
            password=password,
            host=parts.hostname,
            port=port,
            database=database,
            query=join_query(kept),
        )

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the password is never among them)."""
        return dict(split_query(self.query))

    @property
    def sslmode(self) -> str:
        """libpq's sslmode, ``prefer`` when the URL sets none (libpq's and asyncpg's default)."""
        return self.params.get("sslmode", "prefer")

    @property
    def requires_tls(self) -> bool:
        return self.sslmode in TLS_REQUIRED

    def tls_dsn(self, database: str | None = None) -> str:
        """``postgresql://`` without the password and with only the TLS parameters: asyncpg's DSN
        (asyncpg would send any other parameter to the server as a setting)."""
        tls = join_query([(k, v) for k, v in split_query(self.query) if k in TLS_PARAMS])
        path = "/" + quote(database or self.database, safe="")
        return urlunsplit(("postgresql", self._netloc(False), path, tls, ""))

    def _netloc(self, with_password: bool, password_mask: str | None = None) -> str:
        auth = quote(self.user, safe="")
        if self.password is not None:
            pw = quote(self.password, safe="") if with_password else (password_mask or "")
            if with_password or password_mask:
                auth += ":" + pw
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{auth}@{host}:{self.port}" if auth else f"{host}:{self.port}"

    def libpq(self, database: str | None = None) -> str:
        """``postgresql://`` form with every parameter; tools get :meth:`without_password` (pgtools.libpq_env)."""
        path = "/" + quote(database or self.database, safe="")
        return urlunsplit(("postgresql", self._netloc(True), path, self.query, ""))

    def without_password(self, database: str | None = None) -> DatabaseURL:
        """This URL (or another database on its server) with no password at all."""
        return DatabaseURL(
            user=self.user,
            password=None,
            host=self.host,
            port=self.port,
            database=database or self.database,
            query=self.query,
        )

    def asyncpg(self, database: str | None = None) -> str:
        """``postgresql+asyncpg://`` form, for display only: it carries no TLS parameter (SQLAlchemy would pass
        them to asyncpg as unknown arguments); connect with :func:`alembic_operator.job.database.postgres.connect_args`.
        """
        return urlunsplit(("postgresql+asyncpg", self._netloc(True), "/" + (database or self.database), "", ""))

    def redacted(self) -> str:
        """The URL with the password masked, safe for logs and status."""
        return urlunsplit(("postgresql", self._netloc(False, "***"), "/" + self.database, "", ""))

    def key(self) -> str:
        """A stable short key for this database (host, port, name), used to serialise runs."""
        raw = f"{self.host}:{self.port}/{self.database}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]
