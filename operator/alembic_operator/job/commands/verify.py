"""Check that no table lost rows or disappeared since the backup, and optionally the revision.

1. Read manifest.json of the run folder (the "before" counts, taken in the
   dump's own snapshot).
2. Count rows now (``--mode exact`` count(*), ``estimated`` from
   pg_class.reltuples / n_live_tup, ``content`` count(*) and every backed-up
   row still there unchanged (:mod:`alembic_operator.job.checks.content`), or
   ``off``). A table the migration renamed or moved to another schema (same
   table oid as in the manifest) is checked under its new name and reported
   as renamed, not as a table that disappeared.
3. Apply the policy (:func:`alembic_operator.job.checks.rowcounts.check_policy`):
   include/exclude globs choose the tables checked, ``--allow-decrease``
   (the spec) names tables that may shrink or go away, ``--declared-allowance``
   the data changes the revisions declare (:mod:`alembic_operator.job.checks.allowances`):
   shrink, drop, or rename (the new table, whatever its oid, is checked under the old name).
4. Write verify.json (per-table before/after) next to the manifest, then
   raise RowCountViolation naming the tables, or RevisionMismatch. The message
   and result name every allowance used (table, what happened, which revision
   or the spec), so a pass never hides a table that vanished.

Read-only: never changes the database.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import errors, location, results, results_allowances
from alembic_operator.job.checks import allowances, content, rowcounts
from alembic_operator.job.database import identifiers, pgtools, postgres, tls, urls
from alembic_operator.job.storage import archives, manifest, s3

HELP = """Check that no table lost rows or disappeared since the backup, and optionally the revision.

Compares the row counts in the run folder's manifest.json with the database
now, writes verify.json there, and fails naming the tables that lost rows.
"""

#: Estimates drift; in estimated mode a drop within this fraction is not a loss.
ESTIMATE_TOLERANCE = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--location",
        default=os.environ.get(location.ENV),
        help=f"run folder s3://BUCKET/PREFIX/RUN/ holding manifest.json (default ${location.ENV})",
    )
    parser.add_argument(
        "--mode",
        choices=("exact", "estimated", "content", "off"),
        default="exact",
        help="exact count(*) (default), planner estimates, content (exact counts and every backed-up row "
        "still there unchanged; downloads the dump), or off (revision check only)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB[,GLOB]",
        help="check only tables matching (schema.table, or table in any schema); repeatable",
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB[,GLOB]", help="do not check tables matching; repeatable"
    )
    parser.add_argument(
        "--allow-decrease",
        action="append",
        default=[],
        metavar="TABLE[,TABLE]",
        help="tables allowed to lose rows or disappear (globs); repeatable",
    )
    parser.add_argument(
        "--declared-allowance",
        action="append",
        default=[],
        metavar="REV:KIND:TABLE[=TO]",
        help="a data change revision REV declares: REV:shrink:TABLE, REV:drop:TABLE or REV:rename:OLD=NEW; repeatable",
    )
    parser.add_argument(
        "--expect-revision",
        default=None,
        metavar="REV",
        help="fail with RevisionMismatch unless alembic_version holds REV",
    )


def run(args: argparse.Namespace) -> results.VerifyResult:
    loc = location.Location.parse(args.location)
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    tls.refuse_without_ssl_tools(url)  # a run that could never be restored over TLS must not start
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    include = rowcounts.split_patterns(args.include)
    exclude = rowcounts.split_patterns(args.exclude)
    granted = allowances.from_spec(rowcounts.split_patterns(args.allow_decrease))
    granted += allowances.parse_declared(args.declared_allowance)

    with postgres.connect(url=url) as conn:
        bucket.check()
        if not bucket.exists(loc.key(location.MANIFEST)):
            raise errors.StorageError(f"no backup manifest at {loc.uri(location.MANIFEST)}: nothing to verify against")
        doc = manifest.validate(bucket.get_json(loc.key(location.MANIFEST)), uri=loc.uri(location.MANIFEST))
        revision = postgres.alembic_revision(conn)
        if args.mode in ("exact", "content"):
            after = postgres.exact_counts(conn)
        elif args.mode == "estimated":
            after = postgres.estimated_counts(conn)
        else:
            after = {}
        now_oids = {
            int(r["oid"]): identifiers.label(r["schema"], r["name"]) for r in conn.fetch(postgres.USER_TABLES_SQL)
        }
        major = postgres.server_version_num(conn) // 10000

    before = {str(k): int(v) for k, v in doc["tables"].items()}
    renamed = rowcounts.renames(before=doc.get("tableOids") or {}, now=now_oids) if args.mode != "off" else {}
    used: list[results_allowances.AllowanceUsed] = []
    for old, new in renamed.items():  # checked under the name it has now
        if (declared := allowances.rename_declared(old, new, granted)) is not None:
            used.append(
                allowances.used(old, before=before.get(old, 0), after=after.get(new), allowance=declared, to=new)
            )
        if new in after and new not in before:
            after[old] = after.pop(new)
    if args.mode != "off":  # a declared rename by copy (another oid): the new table answers for the old one
        for old, (new, declared) in allowances.declared_renames(allowances=granted, before=before, after=after).items():
            used.append(allowances.used(old, before=before[old], after=after[new], allowance=declared, to=new))
            renamed[old] = new
            after[old] = after.pop(new)
    checks: list[rowcounts.TableCheck] = []
    violations: list[rowcounts.Violation] = []
    if args.mode != "off":
        checks, violations = rowcounts.check_policy(
            before=before,
            after=after,
            include=include,
            exclude=exclude,
            tolerance=ESTIMATE_TOLERANCE if "estimated" in (args.mode, doc.get("rowCountMode")) else 0.0,
            allow=lambda table, rows: allowances.allowing(table, after=rows, allowances=granted),
        )
        used += [
            allowances.used(c.table, before=c.before, after=c.after, allowance=c.allowed_by)
            for c in checks
            if c.status == "allowed" and isinstance(c.allowed_by, allowances.Allowance)
        ]
    content_violations: list[content.ContentViolation] = []
    if args.mode == "content":
        candidates = {c.table: renamed.get(c.table, c.table) for c in checks if c.status == "ok"}
        content_violations = _check_content(url=url, bucket=bucket, doc=doc, loc=loc, major=major, tables=candidates)
        failed = {v.table for v in content_violations}
        checks = [
            rowcounts.TableCheck(c.table, c.before, c.after, "changed") if c.table in failed else c for c in checks
        ]
    new_tables = sorted(set(after) - set(before))
    report = {
        "v": 1,
        "checkedAt": manifest.timestamp(datetime.now(UTC)),
        "mode": args.mode,
        "revision": revision,
        "expectRevision": args.expect_revision,
        "backupRevision": doc.get("revision"),
        "tables": {c.table: {"before": c.before, "after": c.after, "status": c.status} for c in checks},
        "newTables": {t: after[t] for t in new_tables},
        "violations": [v.as_dict() for v in violations] + [v.as_dict() for v in content_violations],
        "renamed": renamed,
        "allowancesUsed": [u.model_dump(by_alias=True) for u in used],
    }
    bucket.put_json(loc.key(location.VERIFY), report)

    listed = ([v.as_dict() for v in violations] + [v.as_dict() for v in content_violations])[: rowcounts.MAX_LISTED]
    totals = _row_totals(checks) if args.mode != "off" else {}
    if violations or content_violations:
        text = "; ".join(
            part
            for part in (
                rowcounts.summarize(violations) if violations else "",
                "; ".join(v.describe() for v in content_violations[: rowcounts.MAX_LISTED]),
            )
            if part
        )
        raise errors.RowCountViolation(
            text,
            violations=listed,
            tablesChecked=len(checks),
            verifyUri=loc.uri(location.VERIFY),
            allowancesUsed=[u.model_dump(by_alias=True) for u in used[: rowcounts.MAX_LISTED]],
            **totals,
        )
    if args.expect_revision is not None and revision != args.expect_revision:
        raise errors.RevisionMismatch(
            f"database is at revision {revision or 'none'}, expected {args.expect_revision}", revision=revision
        )
    checked = sum(1 for c in checks if c.status != "excluded")
    declared_renames = {u.table for u in used if u.change == "renamed"}
    moved = "; ".join(f"{old} renamed to {new}" for old, new in renamed.items() if old not in declared_renames)
    allowed = allowances.summarize(used)
    return results.VerifyResult(
        tables_checked=checked,
        violations=listed,
        revision=revision,
        verify_uri=loc.uri(location.VERIFY),
        allowances_used=used[: rowcounts.MAX_LISTED],
        **totals,
        renamed=renamed,
        message=(
            f"{checked} tables checked, "
            + ("every backed-up row unchanged" if args.mode == "content" else "no rows lost")
            + (f" ({moved})" if moved else "")
            + (f"; {allowed}" if allowed else "")
            if args.mode != "off"
            else "row counts not checked (--mode off)"
        ),
    )


def _check_content(
    *,
    url: urls.DatabaseURL,
    bucket: s3.Bucket,
    doc: dict[str, Any],
    loc: location.Location,
    major: int,
    tables: dict[str, str],
) -> list[content.ContentViolation]:
    """Download the dump (its SHA-256 checked) and compare each table's rows (see checks.content)."""
    tool = pgtools.restore_tools(server_major=major, url=url)[0]
    archive = archives.Archive(manifest=doc, key=doc["key"], uri=f"s3://{loc.bucket}/{doc['key']}")
    with archives.temp_dir() as tmp:
        if doc["format"] == "directory":
            archives.fetch_directory(bucket=bucket, archive=archive, workdir=tmp)
        else:
            archives.download(bucket=bucket, archive=archive, path=os.path.join(tmp, location.DUMP_CUSTOM))
        path = archive.directory or os.path.join(tmp, location.DUMP_CUSTOM)
        with postgres.connect(url=url) as conn:
            return content.check(conn, tool=tool, archive_path=path, tables=tables)


def _row_totals(checks: list[rowcounts.TableCheck]) -> dict[str, int]:
    """status.rowCounts.rowsBefore/rowsAfter: the rows of the checked tables then and now (a vanished table: 0)."""
    checked = [c for c in checks if c.status != "excluded"]
    return {"rowsBefore": sum(c.before for c in checked), "rowsAfter": sum(c.after or 0 for c in checked)}
