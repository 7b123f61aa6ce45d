"""Check that no table lost rows or disappeared since the backup, and optionally the revision.

1. Read manifest.json of the run folder (the "before" counts, taken in the
   dump's own snapshot).
2. Count rows now (``--mode exact`` count(*), ``estimated`` from
   pg_class.reltuples / n_live_tup, or ``off``).
3. Apply the policy (:func:`alembic_operator.job.checks.rowcounts.check_policy`):
   include/exclude globs choose the tables checked, ``--allow-decrease``
   names tables that may shrink or go away.
4. Write verify.json (per-table before/after) next to the manifest, then
   raise RowCountViolation naming the tables, or RevisionMismatch.

Read-only: never changes the database.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from alembic_operator.api import errors, location, results
from alembic_operator.job.checks import rowcounts
from alembic_operator.job.database import postgres, urls
from alembic_operator.job.storage import manifest, s3

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
        choices=("exact", "estimated", "off"),
        default="exact",
        help="exact count(*) (default), planner estimates, or off (revision check only)",
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
        "--expect-revision",
        default=None,
        metavar="REV",
        help="fail with RevisionMismatch unless alembic_version holds REV",
    )


def run(args: argparse.Namespace) -> results.VerifyResult:
    loc = location.Location.parse(args.location)
    url = urls.DatabaseURL.parse(os.environ.get("DATABASE_URL"))
    bucket = s3.Bucket(settings=s3.settings_from_env(), bucket=loc.bucket)
    include = rowcounts.split_patterns(args.include)
    exclude = rowcounts.split_patterns(args.exclude)
    allowed = rowcounts.split_patterns(args.allow_decrease)

    with postgres.connect(url=url) as conn:
        bucket.check()
        if not bucket.exists(loc.key(location.MANIFEST)):
            raise errors.StorageError(f"no backup manifest at {loc.uri(location.MANIFEST)}: nothing to verify against")
        doc = manifest.validate(bucket.get_json(loc.key(location.MANIFEST)), uri=loc.uri(location.MANIFEST))
        revision = postgres.alembic_revision(conn)
        if args.mode == "exact":
            after = postgres.exact_counts(conn)
        elif args.mode == "estimated":
            after = postgres.estimated_counts(conn)
        else:
            after = {}

    before = {str(k): int(v) for k, v in doc["tables"].items()}
    checks: list[rowcounts.TableCheck] = []
    violations: list[rowcounts.Violation] = []
    if args.mode != "off":
        checks, violations = rowcounts.check_policy(
            before=before,
            after=after,
            include=include,
            exclude=exclude,
            allow_decrease=allowed,
            tolerance=ESTIMATE_TOLERANCE if "estimated" in (args.mode, doc.get("rowCountMode")) else 0.0,
        )
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
        "violations": [v.as_dict() for v in violations],
    }
    bucket.put_json(loc.key(location.VERIFY), report)

    listed = [v.as_dict() for v in violations[: rowcounts.MAX_LISTED]]
    totals = _row_totals(checks) if args.mode != "off" else {}
    if violations:
        raise errors.RowCountViolation(
            rowcounts.summarize(violations),
            violations=listed,
            tablesChecked=len(checks),
            verifyUri=loc.uri(location.VERIFY),
            **totals,
        )
    if args.expect_revision is not None and revision != args.expect_revision:
        raise errors.RevisionMismatch(
            f"database is at revision {revision or 'none'}, expected {args.expect_revision}", revision=revision
        )
    checked = sum(1 for c in checks if c.status != "excluded")
    return results.VerifyResult(
        tables_checked=checked,
        violations=listed,
        revision=revision,
        verify_uri=loc.uri(location.VERIFY),
        **totals,
        message=(
            f"{checked} tables checked, no rows lost" if args.mode != "off" else "row counts not checked (--mode off)"
        ),
    )


def _row_totals(checks: list[rowcounts.TableCheck]) -> dict[str, int]:
    """status.rowCounts.rowsBefore/rowsAfter: the rows of the checked tables then and now (a vanished table: 0)."""
    checked = [c for c in checks if c.status != "excluded"]
    return {"rowsBefore": sum(c.before for c in checked), "rowsAfter": sum(c.after or 0 for c in checked)}
