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

When the URL requires TLS (sslmode require, verify-ca or verify-full) only
tools whose libpq has SSL qualify (:func:`has_ssl` asks libpq itself); a
step whose server major has none refuses before it starts anything, naming
why (ToolMissing), instead of failing mid-way or connecting in clear. The
backup's pg_dump is refused too when the restore tools of the server's major
are missing: a run then stops before its migration, never after it.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import re
import subprocess
from dataclasses import dataclass

from alembic_operator.api import errors
from alembic_operator.job.database import urls

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")

PROBE_SECONDS = 120.0
"""How long ``--version`` and the SSL probe may take. Only a loaded node makes them slow: with 100 step pods
on 2 cores a process start took over 10 s, and with a 10 s limit psql 15 silently dropped out of the list
("no usable psql for PostgreSQL 15; found: 16, 17, 18"). A tool that does not answer in time is named."""


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
    """Every ``name`` binary in the candidate dirs that reports a version, in the dirs' order.

    The ``--version`` calls run at once: each is a process start, and a step asks for three tools.
    """
    paths = [os.path.join(d, name) for d in candidate_dirs(environ)]
    paths = [p for p in paths if os.path.isfile(p) and os.access(p, os.X_OK)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
        versions = list(pool.map(_version_of, paths))
    return [
        Tool(name=name, path=path, version=parsed[0], major=parsed[1])
        for path, parsed in zip(paths, versions, strict=True)
        if parsed
    ]


def _version_of(path: str) -> tuple[str, int] | None:
    """The version ``path`` reports; None when it cannot run or reports none. Raises ToolMissing when it does
    not answer within :data:`PROBE_SECONDS` (dropping it would blame a missing major instead)."""
    try:
        out = subprocess.run(
            [path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=PROBE_SECONDS
        ).stdout
    except subprocess.TimeoutExpired as exc:
        raise errors.ToolMissing(f"{path} --version did not answer within {PROBE_SECONDS:g}s") from exc
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out)


#: A conninfo that fails before any network I/O: libpq without SSL rejects its sslmode first.
_SSL_PROBE = "host=/nonexistent/alembic-operator-ssl-probe sslmode=require connect_timeout=1"
_NO_SSL = "SSL support is not compiled in"


def has_ssl(tool: Tool) -> bool:
    """Whether ``tool``'s libpq was built with SSL, asked of the psql beside it (or of pg_dump itself).

    pg_restore reads its archive before it connects, so its directory's psql answers for it.
    """
    psql = os.path.join(os.path.dirname(tool.path), "psql")
    if tool.name == "psql" or (tool.name == "pg_restore" and os.access(psql, os.X_OK)):
        argv = [psql, "-X", "-d", _SSL_PROBE, "-c", ""]
    else:
        argv = [tool.path, "--schema-only", "-d", _SSL_PROBE]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_SECONDS, env=_without_pg_env())
    except subprocess.TimeoutExpired as exc:
        raise errors.ToolMissing(f"{argv[0]} did not answer its SSL probe within {PROBE_SECONDS:g}s") from exc
    except (OSError, subprocess.SubprocessError):
        return False
    return _NO_SSL not in proc.stderr


def with_ssl(
    tools: list[Tool], *, name: str, server_major: int, newer_ok: bool, url: urls.DatabaseURL | None
) -> list[Tool]:
    """``tools`` unchanged, or only those with SSL when ``url`` requires TLS; ToolMissing names why when none."""
    if url is None or not url.requires_tls:
        return tools
    usable = [t for t in tools if has_ssl(t)]
    fitting = _fitting(tools, server_major=server_major, newer_ok=newer_ok)
    if fitting and not any(t in usable for t in fitting):
        lacking = ", ".join(sorted({f"{t.version} ({t.path})" for t in fitting}))
        raise errors.ToolMissing(
            f"DATABASE_URL requires TLS (sslmode={url.sslmode}) but no {name} for PostgreSQL {server_major} "
            f"was built with SSL (without SSL: {lacking}); nothing was started. Use client tools built "
            "with SSL (PG_BIN_DIRS) or a server major whose tools have it"
        )
    return usable


def _fitting(tools: list[Tool], *, server_major: int, newer_ok: bool) -> list[Tool]:
    return [t for t in tools if t.major == server_major or (newer_ok and t.major > server_major)]


#: The tools a run's backup and restore use: name → whether a newer major than the server's serves.
RUN_TOOLS = {"pg_dump": True, "pg_restore": False, "psql": False}


def without_ssl(*, server_major: int) -> list[Tool]:
    """The tools here for ``server_major`` of each kind in :data:`RUN_TOOLS` none of which has SSL.

    Empty when every kind has one with SSL, or none at all (a missing tool is
    :func:`choose`'s refusal, not a TLS one).
    """
    lacking: list[Tool] = []
    for name, newer_ok in RUN_TOOLS.items():
        fitting = _fitting(discover(name), server_major=server_major, newer_ok=newer_ok)
        if fitting and not any(has_ssl(t) for t in fitting):
            lacking += fitting
    return lacking


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


def pg_dump(*, server_major: int, url: urls.DatabaseURL | None = None) -> Tool:
    """The pg_dump for ``server_major`` (with SSL when ``url`` requires TLS).

    Refused (ToolMissing) as well when the restore tools of that major are not here: a newer
    pg_dump could take the backup, but nothing could restore it, and the migration would then
    run without a way back.
    """
    found = with_ssl(discover("pg_dump"), name="pg_dump", server_major=server_major, newer_ok=True, url=url)
    tool = choose(found, name="pg_dump", server_major=server_major, newer_ok=True)
    try:
        restore_tools(server_major=server_major, url=url)
    except errors.ToolMissing as exc:
        raise errors.ToolMissing(
            f"PostgreSQL {server_major} cannot be restored with the client tools here, so no backup is taken "
            f"and nothing was started: {exc.message}"
        ) from None
    return tool


def restore_tools(*, server_major: int, url: urls.DatabaseURL | None = None) -> tuple[Tool, Tool]:
    """pg_restore and psql of exactly the server's major, from the same directory when possible
    (with SSL when ``url`` requires TLS)."""
    restores = with_ssl(discover("pg_restore"), name="pg_restore", server_major=server_major, newer_ok=False, url=url)
    restore = choose(restores, name="pg_restore", server_major=server_major, newer_ok=False)
    sibling = os.path.join(os.path.dirname(restore.path), "psql")
    psqls = with_ssl(discover("psql"), name="psql", server_major=server_major, newer_ok=False, url=url)
    same_dir = [t for t in psqls if t.path == sibling]
    psql = choose(same_dir + psqls, name="psql", server_major=server_major, newer_ok=False)
    return restore, psql


def libpq_env(*, url: urls.DatabaseURL, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A ``-d`` connection string without the password (TLS parameters kept), and the env carrying it.

    The caller's own PG* variables are dropped, so the URL alone decides where and how the tool connects.
    """
    env = _without_pg_env()
    env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "10")
    if url.password is not None:
        env["PGPASSWORD"] = url.password
    return url.without_password(database).libpq(), env


def _without_pg_env() -> dict[str, str]:
    """This process's environment without libpq's PG* variables (PG_BIN_DIRS is ours and stays)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PG_BIN_DIRS"}
