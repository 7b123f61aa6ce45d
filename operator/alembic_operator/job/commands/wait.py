"""The wait step: an init container that holds the app back until the database is migrated.

1. Load the scripts; their single head is what this image expects
   (multiple heads: RevisionError at once, no migration could satisfy it).
2. Every ``--interval-seconds``: connect, read the version table, disconnect.
   At the head: succeed. No version table yet ("not migrated yet"), an older
   revision, a revision this image does not know, or a database that cannot
   be reached yet: keep waiting.
3. After ``--timeout-seconds``: WaitTimeout saying where the database is and
   what the image expects.

Must not: write to the database, or hold a connection between polls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from alembic_operator.api import errors, results
from alembic_operator.job.database import tls, urls
from alembic_operator.job.migrations import alembic_runtime, revisions

HELP = """Wait until DATABASE_URL is at the head revision of this image's Alembic scripts.

Meant for an init container: succeeds at once when the database is at the
head, keeps polling while it is behind (or not migrated at all), and fails
with WaitTimeout after --timeout-seconds.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="alembic.ini", metavar="PATH", help="Alembic config file (default ./alembic.ini)"
    )
    parser.add_argument(
        "--timeout-seconds", type=float, default=300.0, metavar="SECONDS", help="give up after this long (default 300)"
    )
    parser.add_argument(
        "--interval-seconds", type=float, default=2.0, metavar="SECONDS", help="time between checks (default 2)"
    )


def run(args: argparse.Namespace) -> results.WaitResult:
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(url)  # a run that could never be restored over TLS must not start
    if args.timeout_seconds < 0 or args.interval_seconds <= 0:
        raise errors.InvalidInput("--timeout-seconds must be >= 0 and --interval-seconds > 0")
    config = revisions.load_config(args.config)
    script = revisions.load_scripts(config)
    head = revisions.single_head(script)
    table, schema = revisions.version_table(config)
    return asyncio.run(
        _wait(
            url=url,
            script=script,
            head=head,
            table=table,
            schema=schema,
            timeout=args.timeout_seconds,
            interval=args.interval_seconds,
        )
    )


async def _wait(
    *, url: urls.DatabaseURL, script: Any, head: str, table: str, schema: str | None, timeout: float, interval: float
) -> results.WaitResult:
    started = time.monotonic()
    deadline = started + timeout
    checks = 0
    state = "unknown"
    while True:
        checks += 1
        state, at_head = await _check(url=url, script=script, head=head, table=table, schema=schema)
        if at_head:
            waited = time.monotonic() - started
            return results.WaitResult(
                message=f"database at {head}, the head of this image's scripts"
                + (f" (waited {waited:.0f}s)" if waited >= 1 else ""),
                revision=head,
                waited_seconds=round(waited, 3),
                checks=checks,
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise errors.WaitTimeout(
                f"database {state}, image expects {head} after {timeout:g}s", expectedRevision=head, checks=checks
            )
        await asyncio.sleep(min(interval, remaining))


async def _check(*, url: urls.DatabaseURL, script: Any, head: str, table: str, schema: str | None) -> tuple[str, bool]:
    """(a description of where the database is, whether it is at ``head``)."""
    try:
        conn = await alembic_runtime.connect(url, application="alembic-operator wait")
    except errors.DatabaseUnreachable as exc:
        return f"not reachable ({exc.message})", False
    try:
        current = await revisions.read_database_heads(conn, table=table, schema=schema)
    finally:
        await conn.close()
    if current is None:
        return "not migrated yet (no version table)", False
    if current == (head,):
        return f"at {head}", True
    if not current:
        return "at base (empty version table)", False
    try:
        revisions.check_known(script, current)
    except errors.RevisionError:
        return f"at {revisions.describe(current)} (not in this image's scripts)", False
    return f"at {revisions.describe(current)}", False
