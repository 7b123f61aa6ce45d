"""Database URLs: parse the user's DATABASE_URL once, hand each consumer its form.

Users give ``postgresql://`` or ``postgresql+asyncpg://`` (also ``postgres://``).
Alembic's async env needs the asyncpg form; libpq tools (pg_dump, pg_restore)
need the plain form; humans get the redacted one. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from alembic_operator.api import errors

_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}


@dataclass(frozen=True)
class DatabaseURL:
    """A validated PostgreSQL URL."""

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
        return cls(
            user=unquote(parts.username or ""),
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
            database=database,
            query=parts.query,
        )

    def _netloc(self, with_password: bool, password_mask: str | None = None) -> str:
        from urllib.parse import quote

        auth = quote(self.user, safe="")
        if self.password is not None:
            pw = quote(self.password, safe="") if with_password else (password_mask or "")
            if with_password or password_mask:
                auth += ":" + pw
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{auth}@{host}:{self.port}" if auth else f"{host}:{self.port}"

    def libpq(self, database: str | None = None) -> str:
        """``postgresql://`` form for pg_dump/pg_restore/psql."""
        return urlunsplit(("postgresql", self._netloc(True), "/" + (database or self.database), self.query, ""))

    def asyncpg(self, database: str | None = None) -> str:
        """``postgresql+asyncpg://`` form for SQLAlchemy's async engine (Alembic's env.py)."""
        return urlunsplit(("postgresql+asyncpg", self._netloc(True), "/" + (database or self.database), "", ""))

    def redacted(self) -> str:
        """The URL with the password masked, safe for logs and status."""
        return urlunsplit(("postgresql", self._netloc(False, "***"), "/" + self.database, "", ""))

    def key(self) -> str:
        """A stable short key for this database (host, port, name), used to serialise runs."""
        raw = f"{self.host}:{self.port}/{self.database}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]
