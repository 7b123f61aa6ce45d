"""Pick the PostgreSQL client tools (pg_dump, pg_restore, psql) that suit a server.

pg_dump reads any older server, so it must be of the server's major or newer
(we prefer exactly the server's major). pg_restore and psql write into a
server, and a newer one emits settings an older server rejects (pg_restore 18
into PostgreSQL 15 with --single-transaction fails on ``transaction_timeout``),
so they must match the server's major exactly. The image may carry several
majors side by side; this module finds them.

Search order: ``PG_BIN_DIRS`` (colon-separated), then /usr/lib/postgresql/*/bin
(newest first), then PATH. Also builds the libpq environment for the tools, so
the password goes in PGPASSWORD and never on a command line.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from dataclasses import dataclass

from alembic_operator.api import errors
from alembic_operator.job.database import urls

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Tool:
    """One client binary and its version."""

    name: str
    path: str
    version: str
    major: int


def candidate_dirs(environ: dict[str, str] | None = None) -> list[str]:
    """Directories to search, in order, without duplicates."""
    env = os.environ if environ is None else environ
    dirs = [d for d in (env.get("PG_BIN_DIRS") or "").split(":") if d]

    def major_of(path: str) -> int:
        m = re.search(r"/postgresql/(\d+)/bin$", path)
        return int(m.group(1)) if m else 0

    dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major_of, reverse=True)
    dirs += [d for d in (env.get("PATH") or "").split(os.pathsep) if d]
    seen: set[str] = set()
    unique = []
    for d in dirs:
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            unique.append(d)
    return unique


def parse_version(text: str) -> tuple[str, int] | None:
    """``"pg_dump (PostgreSQL) 15.18 (Debian ...)"`` → ``("15.18", 15)``."""
    m = _VERSION.search(text)
    if not m:
        return None
    version = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
    return version, int(m.group(1))


def discover(name: str, *, environ: dict[str, str] | None = None) -> list[Tool]:
    """Every ``name`` binary in the candidate dirs that reports a version."""
    found = []
    for d in candidate_dirs(environ):
        path = os.path.join(d, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        try:
            out = subprocess.run(
                [path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        parsed = parse_version(out)
        if parsed:
            found.append(Tool(name=name, path=path, version=parsed[0], major=parsed[1]))
    return found


def choose(tools: list[Tool], *, name: str, server_major: int, newer_ok: bool) -> Tool:
    """The first tool of exactly ``server_major``; else (``newer_ok``) the nearest newer major.

    Raises ToolMissing naming the versions found and the one needed.
    """
    exact = [t for t in tools if t.major == server_major]
    if exact:
        return exact[0]
    if newer_ok:
        newer = sorted((t for t in tools if t.major > server_major), key=lambda t: t.major)
        if newer:
            return newer[0]
    have = ", ".join(sorted({t.version for t in tools})) or "none"
    need = f"{server_major} or newer" if newer_ok else f"exactly {server_major}"
    raise errors.ToolMissing(
        f"no usable {name} for PostgreSQL {server_major} (need major {need}; found: {have}); "
        "add its bin directory to PG_BIN_DIRS"
    )


def pg_dump(*, server_major: int) -> Tool:
    return choose(discover("pg_dump"), name="pg_dump", server_major=server_major, newer_ok=True)


def restore_tools(*, server_major: int) -> tuple[Tool, Tool]:
    """pg_restore and psql of exactly the server's major, from the same directory when possible."""
    restore = choose(discover("pg_restore"), name="pg_restore", server_major=server_major, newer_ok=False)
    sibling = os.path.join(os.path.dirname(restore.path), "psql")
    psqls = discover("psql")
    same_dir = [t for t in psqls if t.path == sibling]
    psql = choose(same_dir + psqls, name="psql", server_major=server_major, newer_ok=False)
    return restore, psql


def libpq_env(*, url: urls.DatabaseURL, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A ``-d`` connection string without the password, and the env carrying it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PG_BIN_DIRS"}
    env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "10")
    if url.password is not None:
        env["PGPASSWORD"] = url.password
    bare = urls.DatabaseURL(
        user=url.user, password=None, host=url.host, port=url.port, database=database or url.database, query=url.query
    )
    return bare.libpq(), env
