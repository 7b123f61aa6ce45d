"""Rehearse the migration on a scratch copy of the database: prepare it, run a step against it, drop it.

A rehearsal is four Jobs; the operator records the scratch database's name in
the run's status before the first one starts, so a restarted operator knows
what to drop:

1. ``rehearse prepare`` (operator image): refuse a database larger than
   ``--max-database-bytes`` (nothing created); create the scratch database on
   the same server (needs CREATEDB) or on the server of
   ``REHEARSAL_DATABASE_URL``; download the dump, checking its SHA-256 against
   the manifest as the restore does; ``pg_restore -j`` into it (no single
   transaction: the copy needs no atomicity, only speed); record its write
   counters (``rehearsal-baseline.json`` in the run's folder).
2. ``rehearse exec --database NAME --run alembic-operator migrate ...`` (the
   app's image): the unchanged migrate command, its DATABASE_URL pointing at
   the scratch database (same scheme, user, password and TLS parameters).
3. The same for ``verify`` (operator image).
4. ``rehearse drop`` (operator image; always, also after a failure, the run's
   deletion or an operator restart): the scratch database's write counters
   against the baseline — rows inserted, updated, deleted per table — go to
   ``rehearsal.json``, then ``DROP DATABASE ... WITH (FORCE)``; a database
   that is already gone counts as dropped.

Must not: write to the real database (prepare only reads its size); drop or
create a database whose name lacks :data:`SCRATCH_PREFIX` (a slip must never
reach production's name).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

from alembic_operator.api import errors, location, results
from alembic_operator.job.database import pgtools, postgres, tls, urls
from alembic_operator.job.storage import archives, manifest, s3

log = logging.getLogger(__name__)

HELP = """Rehearse the migration on a scratch copy of the database: prepare it, run a step against it, drop it.

prepare: create the scratch database and pg_restore -j the run's backup into it;
exec: run a command (migrate, verify) with DATABASE_URL pointing at it;
drop: record what the rehearsal wrote (rehearsal.json) and drop it.
"""

#: Every scratch database's name starts with this; prepare and drop refuse any other name.
SCRATCH_PREFIX = "alembic_rehearsal_"
#: The server to rehearse on, when not the real database's own (a Secret's URL; its database is only a door).
SERVER_ENV = "REHEARSAL_DATABASE_URL"
BASELINE = "rehearsal-baseline.json"
REPORT = "rehearsal.json"
#: The counters compared: what the migration inserted, updated and deleted in each table.
COUNTERS = {"n_tup_ins": "inserted", "n_tup_upd": "updated", "n_tup_del": "deleted"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("prepare", "exec", "drop"), help="what to do (see above)")
    parser.add_argument(
        "--database", required=True, help=f"the scratch database's name (it must start with {SCRATCH_PREFIX})"
    )
    parser.add_argument(
        "--location",
        default=os.environ.get(location.ENV),
        help=f"run folder s3://BUCKET/PREFIX/RUN/ holding the backup (default ${location.ENV})",
    )
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore -j: parallel restore jobs (default 2)")
    parser.add_argument(
        "--max-database-bytes",
        type=int,
        default=None,
        help="prepare refuses (creating nothing) when the real database is larger than this",
    )
    parser.add_argument(
        "--run",
        dest="argv",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="COMMAND",
        help="exec: the command to run against the copy, with its arguments (last: it takes the rest)",
    )


def run(args: argparse.Namespace) -> results.RehearseResult:
    if not args.database.startswith(SCRATCH_PREFIX) or len(args.database) > 63:
        raise errors.InvalidInput(f"{args.database!r} is not a scratch database name (prefix {SCRATCH_PREFIX})")
    if args.action == "exec":
        exec_against(name=args.database, command=args.argv)
    if args.action == "prepare":
        return prepare(args)
    return drop(args)


# --------------------------------------------------------------------------- urls


def server_url() -> str:
    """The URL whose server hosts the scratch database: REHEARSAL_DATABASE_URL, else DATABASE_URL."""
    raw = os.environ.get(SERVER_ENV) or os.environ.get("DATABASE_URL")
    urls.DatabaseURL.parse(raw)  # InvalidInput naming what is wrong, never echoing the password
    assert raw is not None
    return raw


def scratch_url(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``: scheme, user, password, host and query as given."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, parts.fragment))


def exec_against(*, name: str, command: list[str]) -> NoReturn:
    """Replace this process by ``command``, its DATABASE_URL the scratch database: its result is the Job's."""
    argv = command[1:] if command[:1] == ["--"] else command
    if not argv:
        raise errors.InvalidInput("exec needs --run COMMAND")
    env = dict(os.environ, DATABASE_URL=scratch_url(server_url(), name))
    env.pop(SERVER_ENV, None)
    # Without the run folder, migrate records no write counters: the copy's must never stand in for the
    # real migration's (a restore subtracts those as the migration's own writes, safety rule 3).
    env.pop(location.ENV, None)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


# --------------------------------------------------------------------------- prepare


def prepare(args: argparse.Namespace) -> results.RehearseResult:
    """Refuse a too large database; create the copy; restore the checked dump into it in parallel."""
    loc = location.Location.parse(args.location)
    real = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(real)  # exec's migrate and verify ask it themselves; a drop always runs
    server = urls.DatabaseURL.parse(server_url())
    with postgres.connect(url=real) as conn:
        size = postgres.database_size(conn)
    if args.max_database_bytes is not None and size > args.max_database_bytes:
        raise errors.InvalidInput(
            f"the database is {size} bytes, more than rehearsal.maxDatabaseBytes ({args.max_database_bytes}); "
            "no scratch copy was made"
        )
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    doc = manifest.validate(bucket.get_json(loc.key(location.MANIFEST)), uri=loc.uri(location.MANIFEST))
    archive = archives.Archive(manifest=doc, key=doc["key"], uri=f"s3://{loc.bucket}/{doc['key']}")
    started = time.monotonic()
    with postgres.connect(url=server) as admin:
        major = postgres.server_version_num(admin) // 10000
        postgres.drop_database(admin, name=args.database)  # a copy left by an earlier attempt
        try:
            postgres.create_database(admin, name=args.database)
        except errors.StepError as exc:
            raise errors.InvalidInput(
                f"{exc.message.split(';')[0]}: the rehearsal's user needs CREATEDB on "
                f"{server.host}:{server.port} (or give spec.rehearsal.urlSecretRef another server)"
            ) from None
    restore_tool, _ = pgtools.restore_tools(server_major=major, url=server)
    with archives.temp_dir() as tmp:
        if doc["format"] == "directory":
            archives.fetch_directory(bucket=bucket, archive=archive, workdir=tmp)
        elif not archives.fetch_custom(bucket=bucket, archive=archive, workdir=tmp):
            raise errors.InvalidInput(
                f"no room for the {doc['sizeBytes']}-byte dump on the pod's disk: a rehearsal needs it locally"
            )
        source = archive.directory or archive.path
        assert source is not None
        _pg_restore(tool=restore_tool, url=server, name=args.database, source=source, jobs=args.jobs)
    with postgres.connect(url=server, database=args.database) as conn:
        baseline = postgres.settled_write_stats(conn)
    bucket.put_json(loc.key(BASELINE), {"database": args.database, "tables": baseline})
    seconds = round(time.monotonic() - started, 3)
    return results.RehearseResult(
        message=f"restored the backup into scratch database {args.database} in {seconds}s "
        f"(pg_restore -j {args.jobs}; the real database is {size} bytes)",
        database=args.database,
        database_bytes=size,
        restore_seconds=seconds,
    )


def _pg_restore(*, tool: pgtools.Tool, url: urls.DatabaseURL, name: str, source: str, jobs: int) -> None:
    """pg_restore -j into ``name``; owners and grants are left out (the copy's objects are the user's)."""
    dsn, env = pgtools.libpq_env(url=url, database=name)
    argv = [tool.path, "--exit-on-error", "--no-owner", "--no-acl", "-j", str(max(1, jobs)), "-d", dsn, source]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise errors.StepError(f"pg_restore into the scratch database failed: {' '.join(tail)}")


# --------------------------------------------------------------------------- drop


def drop(args: argparse.Namespace) -> results.RehearseResult:
    """Report what the rehearsal wrote (when the copy and a baseline exist), then drop the copy."""
    server = urls.DatabaseURL.parse(server_url())
    with postgres.connect(url=server) as admin:
        exists = admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", args.database) is not None
    report_uri = None
    writes: list[results.RehearsedWrites] = []
    if exists and args.location:
        loc = location.Location.parse(args.location)
        writes, report_uri = _report(server=server, name=args.database, loc=loc)
    with postgres.connect(url=server) as admin:
        postgres.drop_database(admin, name=args.database)
    what = "dropped" if exists else "was already gone"
    return results.RehearseResult(
        message=f"scratch database {args.database} {what}",
        database=args.database,
        dropped=True,
        existed=exists,
        writes=writes[:20],
        report_uri=report_uri,
    )


def _report(
    *, server: urls.DatabaseURL, name: str, loc: location.Location
) -> tuple[list[results.RehearsedWrites], str | None]:
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    if not bucket.exists(loc.key(BASELINE)):
        return [], None
    baseline = bucket.get_json(loc.key(BASELINE)).get("tables", {})
    with postgres.connect(url=server, database=name) as conn:
        after = postgres.settled_write_stats(conn)
    writes = deltas(before=baseline, after=after)
    bucket.put_json(loc.key(REPORT), {"database": name, "writes": [w.model_dump(by_alias=True) for w in writes]})
    return writes, loc.uri(REPORT)


def deltas(*, before: dict[str, Any], after: dict[str, Any]) -> list[results.RehearsedWrites]:
    """Rows each table got from the rehearsal (counters after minus baseline), most first; new tables count all."""
    found = []
    for table, now in after.items():
        was = before.get(table, {})
        moved = {label: max(0, int(now.get(c, 0)) - int(was.get(c, 0))) for c, label in COUNTERS.items()}
        if any(moved.values()):
            found.append(results.RehearsedWrites(table=table, **moved))
    return sorted(found, key=lambda w: (-(w.inserted + w.updated + w.deleted), w.table))
