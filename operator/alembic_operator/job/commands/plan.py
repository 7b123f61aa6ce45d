"""The plan step: the SQL an upgrade would run, for review, with destructive statements marked.

1. Load the scripts; reject multiple heads and an unknown ``--target``.
2. Find where the database stands: ``--from REV`` (no database needed) or the
   version table read through DATABASE_URL; reject an unknown revision.
3. Render each pending revision with ``alembic upgrade PARENT:REV --sql``
   (offline: nothing is executed; :mod:`alembic_operator.job.migrations.rendering`); one
   that cannot render is named with its reason and the others are still read.
4. Mark destructive statements (:mod:`alembic_operator.job.migrations.destructive`) as SQL
   comments (a type change that only widens is not one: the old type from the revision's
   ``existing_type`` or, with a database, :mod:`alembic_operator.job.migrations.catalog_types`)
   and list them in the result; list DO blocks/functions as unchecked and the data changes
   the revisions declare (:mod:`alembic_operator.job.migrations.allowances`).
5. Write the plan to stdout, ``--output FILE`` and/or ``--location s3://.../``
   (as ``plan.sql``), then apply ``--policy``: ``block`` raises DestructiveChange.

Must not: execute any statement of the plan, or write to the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from alembic.util import CommandError

from alembic_operator.api import errors, results
from alembic_operator.job.database import tls, urls
from alembic_operator.job.migrations import (
    alembic_runtime,
    allowances,
    catalog_types,
    destructive,
    engines,
    revisions,
)
from alembic_operator.job.migrations import rendering as rendering_

HELP = """Render the SQL that migrate would run, with destructive statements marked.

The starting revision is read from DATABASE_URL, or given with --from. The
plan goes to stdout (before the JSON result), --output FILE, or --location
s3://BUCKET/PREFIX/ (as plan.sql). --policy block fails when the plan drops,
truncates, retypes or renames anything, or deletes/updates without WHERE.
"""

PLAN_OBJECT = "plan.sql"
#: At most this many destructive statements are listed in the result (all are marked in the SQL).
MAX_LISTED = 10
POLICIES = ("allow", "warn", "block")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="alembic.ini", metavar="PATH", help="Alembic config file (default ./alembic.ini)"
    )
    parser.add_argument("--target", default="head", help="revision to plan the upgrade to (default head)")
    parser.add_argument(
        "--from",
        dest="from_revision",
        default=None,
        metavar="REV",
        help="plan from this revision ('base' for an empty database) instead of reading DATABASE_URL",
    )
    parser.add_argument("--output", default="-", metavar="FILE", help="write the plan here ('-' = stdout, default)")
    parser.add_argument(
        "--location",
        default=None,
        metavar="S3_URI",
        help=f"also upload the plan as {PLAN_OBJECT} under this s3://BUCKET/PREFIX/",
    )
    engines.add_arguments(parser)
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="warn",
        help="destructive statements: allow, warn (list them; default) or block (fail)",
    )
    parser.add_argument(
        "--unrendered",
        choices=("fail", "report"),
        default=None,
        help="revisions that cannot render offline: fail (the default under --policy block) or report them "
        "(the default otherwise; the operator reports them under block and waits for a person's approval)",
    )


def run(args: argparse.Namespace) -> results.PlanResult:
    tls.refuse_without_ssl_tools(_url_or_none())  # a run that could never be restored over TLS must not start
    config = revisions.load_config(args.config)
    script = revisions.load_scripts(config)
    revisions.resolve_target(script, args.target)  # an unknown target fails before anything else
    current = _starting_point(args, config, script)
    path = revisions.upgrade_path(script, current, args.target)  # several heads: each revision renders alone
    engines.point_at(config, _url_or_none(), url_env=args.url_env)  # an unmodified env.py reads sqlalchemy.url
    with engines.app_context(args.flask_app):
        rendering = rendering_.render_each(config, script, path.pending)
    sql = rendering.sql
    if args.from_revision is None:  # connected: the catalog names old column types the revisions do not
        sql = catalog_types.hint_existing_types(sql, urls.DatabaseURL.parse(os.environ.get("DATABASE_URL")))
    unrendered = [{"revision": rev, "reason": reason} for rev, reason in rendering.unrendered]
    if unrendered and (args.unrendered or ("fail" if args.policy == "block" else "report")) == "fail":
        # Under `block` a revision the plan cannot see cannot be checked: the plan stops here, naming each.
        raise errors.RevisionError(
            f"{_describe_unrendered(unrendered)}; policy block cannot be checked", unrendered=unrendered
        )
    declared = allowances.declared(script, path.pending)
    findings = destructive.scan(sql)
    unchecked = _unchecked(sql)
    statements = _count_statements(sql)
    plan_sql = _header(path, statements, findings, unrendered, unchecked) + destructive.annotate(sql)
    written = _write(plan_sql, output=args.output, location=args.location)
    data: dict[str, Any] = {
        "fromRevision": path.from_revision,
        "toRevision": path.to_revision,
        "pending": list(path.pending),
        "statements": statements,
        "destructiveCount": len(findings),
        "destructive": [f.as_dict() for f in findings[:MAX_LISTED]],
        "policy": args.policy,
        "unrendered": unrendered,
        "unchecked": unchecked[:MAX_LISTED],
        "declaredAllowances": declared,
        **written,
    }
    if findings and args.policy == "block":
        listed = "; ".join(f"{f.revision} {f.kind}: {destructive.shorten(f.statement, 80)}" for f in findings[:3])
        more = f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
        raise errors.DestructiveChange(
            f"{len(findings)} destructive statement{'s' if len(findings) != 1 else ''} in the plan "
            f"(policy block): {listed}{more}",
            **data,
        )
    if not path.pending:
        data["message"] = f"database at {path.from_revision or 'base'} is already at the target; nothing to plan"
    else:
        data["message"] = f"plan from {path.from_revision or 'base'} to {path.to_revision}: {statements} statements"
        if findings:
            data["message"] += f", {len(findings)} destructive ({', '.join(sorted({f.kind for f in findings}))})"
    if declared:
        listed = ", ".join(f"{a['revision']} {a['kind']} {a['table']}" for a in declared[:5])
        data["message"] += f"; declared data changes: {listed}" + (" ..." if len(declared) > 5 else "")
    if unchecked:
        data["message"] += f"; {len(unchecked)} unchecked (server-side code: {_listed(unchecked, 'kind')})"
    if unrendered:
        data["rendered"] = False
        data["message"] += f"; {_describe_unrendered(unrendered)}: their statements are not checked"
    return results.PlanResult.model_validate(data)


def _starting_point(args: argparse.Namespace, config: Any, script: Any) -> tuple[str, ...]:
    """The database's revision: from ``--from`` or read through DATABASE_URL."""
    if args.from_revision is not None:
        if args.from_revision in ("base", ""):
            return ()
        try:
            found = script.get_revision(args.from_revision)
        except CommandError:
            found = None
        if found is None:
            raise errors.RevisionError(
                f"--from {args.from_revision!r} is not a revision of these scripts; "
                f"heads are {', '.join(revisions.heads(script))}"
            )
        return (found.revision,)
    if not os.environ.get("DATABASE_URL"):
        raise errors.InvalidInput("DATABASE_URL is not set; set it or pass --from REV to plan without a database")
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    table, schema = revisions.version_table(config)

    async def read() -> tuple[str, ...]:
        conn = await alembic_runtime.connect(url, application="alembic-operator plan")
        try:
            return await revisions.read_database_heads(conn, table=table, schema=schema) or ()
        finally:
            await conn.close()

    return asyncio.run(read())


def _count_statements(sql: str) -> int:
    """Statements of the plan, without BEGIN/COMMIT and the version-table bookkeeping."""
    count = 0
    for _, statement in destructive.attributed_statements(sql):
        words = statement.lstrip().split(None, 1)
        body = "\n".join(ln for ln in statement.splitlines() if not ln.lstrip().startswith("--")).strip()
        if not body or not words:
            continue
        first = body.split(None, 1)[0].upper()
        if first in ("BEGIN", "COMMIT") or "alembic_version" in body:
            continue
        count += 1
    return count


def _header(
    path: revisions.UpgradePath,
    statements: int,
    findings: list[destructive.Finding],
    unrendered: list[dict[str, str]],
    unchecked: list[dict[str, str | None]],
) -> str:
    lines = [
        f"-- alembic-operator plan: {path.from_revision or 'base'} -> {path.to_revision}",
        f"-- revisions: {', '.join(path.pending) or '(none: already at target)'}",
        f"-- statements: {statements}; destructive: {len(findings)}; unchecked: {len(unchecked)}"
        + (f"; NOT RENDERED: {len(unrendered)} revision(s), not checked" if unrendered else ""),
    ]
    for f in findings:
        lines.append(f"--   {f.revision} {f.kind}: {destructive.shorten(f.statement, 120)}")
    for u in unchecked:
        lines.append(f"--   {u['revision']} unchecked {u['kind']}: {destructive.shorten(u['statement'] or '', 120)}")
    for r in unrendered:
        lines.append(f"--   {r['revision']} not rendered offline: {r['reason']}")
    return "\n".join(lines) + "\n\n"


def _unchecked(sql: str) -> list[dict[str, str | None]]:
    """DO blocks, functions and CALLs, with their revision: code the classifier cannot see into."""
    found: list[dict[str, str | None]] = []
    for revision, statement in destructive.attributed_statements(sql):
        kind = destructive.unchecked(statement)
        if kind:
            found.append({"revision": revision, "kind": kind, "statement": destructive.shorten(statement, 160)})
    return found


def _listed(items: list[dict[str, str | None]], key: str) -> str:
    return ", ".join(f"{i['revision']} {i[key]}" for i in items[:5]) + (" ..." if len(items) > 5 else "")


def _describe_unrendered(unrendered: list[dict[str, str]]) -> str:
    count = len(unrendered)
    listed = "; ".join(f"{u['revision']} ({u['reason']})" for u in unrendered[:5])
    more = f"; and {count - 5} more" if count > 5 else ""
    return f"{count} revision{'s' if count != 1 else ''} cannot be rendered as SQL offline: {listed}{more}"


def _url_or_none() -> urls.DatabaseURL | None:
    raw = os.environ.get("DATABASE_URL")
    return urls.DatabaseURL.parse(raw) if raw else None


def _write(text: str, *, output: str | None, location: str | None) -> dict[str, str]:
    written: dict[str, str] = {}
    if output and output != "-":
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise errors.InvalidInput(f"cannot write --output {output!r}: {exc.strerror or exc}") from None
        written["output"] = output
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if location:
        written["location"] = _upload(text, location)
    return written


def _upload(text: str, location: str) -> str:
    """Put the plan at ``<location>/plan.sql``; return its URI. StorageError on any S3 failure."""
    from alembic_operator.api import location as locations
    from alembic_operator.job.storage import s3

    loc = locations.Location.parse(location)
    key = loc.key(PLAN_OBJECT)
    settings = s3.settings_from_env()
    try:
        client = s3.client(settings=settings)
        # Like every object of the run folder: encrypted when spec.backup.s3.serverSideEncryption asks.
        sse = {"ServerSideEncryption": settings.sse} if settings.sse else {}
        client.put_object(Bucket=loc.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/sql", **sse)
    except s3.S3_ERRORS as exc:
        raise errors.StorageError(s3.describe(exc, bucket=loc.bucket, key=key, endpoint=settings.endpoint)) from None
    return loc.uri(PLAN_OBJECT)
