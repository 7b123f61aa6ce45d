"""verify ``--mode content``: every row the backup holds is still there, unchanged (issue 13, finding 6).

Row counts miss a migration that deletes N rows and inserts N others, or
rewrites every row. In content mode each checked table's rows in the backup
(its COPY block in the archive, :func:`alembic_operator.job.database.row_digests.archive_rows`)
are compared, as a multiset of per-row SHA-256, with the table's rows now,
read for the same columns in the same order. A backup row that is not found
now — deleted, or changed in any column the backup had — is a violation;
rows added since are not (the application may keep writing). A column the
backup had and the table lost makes every row count as changed.

Cost: the dump is downloaded once and pg_restore reads each checked table's
data from it; each table is read once now with COPY; 32 bytes per row are
held for each side of one table at a time.

Not to be confused with the backup's ``--verify checksum`` (the dump's bytes).
Must not: write to the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic_operator.job.database import identifiers, pgtools, postgres, row_digests


@dataclass(frozen=True)
class ContentViolation:
    """A table some of whose backed-up rows are gone or changed."""

    table: str
    before: int
    after: int
    changed: int
    lost_columns: tuple[str, ...] = ()

    def describe(self) -> str:
        short = self.table[len("public.") :] if self.table.startswith("public.") else self.table
        if self.lost_columns:
            return f"{short} lost column(s) {', '.join(self.lost_columns)} (content)"
        return f"{short}: {self.changed} of the backup's {self.before} rows changed or gone (content)"

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "before": self.before,
            "after": self.after,
            "changedRows": self.changed,
            **({"lostColumns": list(self.lost_columns)} if self.lost_columns else {}),
        }


def check(
    conn: postgres.Connection, *, tool: pgtools.Tool, archive_path: str, tables: dict[str, str]
) -> list[ContentViolation]:
    """Compare each of ``tables`` (backup label → label now, which differs for a renamed table)."""
    found: list[ContentViolation] = []
    for before_label, now_label in sorted(tables.items()):
        backup, columns = row_digests.archive_rows(
            tool=tool, archive_path=archive_path, table=identifiers.parse(before_label)
        )
        now_table = identifiers.parse(now_label)
        present = set(row_digests.columns_of(conn, now_table))
        rows_before = backup.hashes()
        lost = tuple(c for c in columns if c not in present)
        if lost:
            count = int(conn.fetchval(f"SELECT count(*) FROM {postgres.qualified(*now_table)}"))
            found.append(ContentViolation(before_label, len(rows_before), count, len(rows_before), lost))
            continue
        rows_now = row_digests.table_rows(conn, now_table, columns=columns).hashes()
        changed = row_digests.missing(backup=rows_before, now=rows_now)
        if changed:
            found.append(ContentViolation(before_label, len(rows_before), len(rows_now), changed))
    return found
