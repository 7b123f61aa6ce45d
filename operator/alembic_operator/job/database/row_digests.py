"""A table's content as one digest: equal digests mean the same rows, not only as many.

The digest of a table is SHA-256 over the sorted SHA-256 of each row's COPY
text line (columns in attribute order, generated and dropped columns left
out, as pg_dump writes them), plus the row count. Sorting the per-row hashes
makes it independent of physical order and costs 32 bytes per row, not the
table's size. The same lines come from two places:

- :func:`of_table`: ``COPY … TO STDOUT`` of the table on a connection (names
  passed to asyncpg as data, quoted by it) — at backup time in the dump's
  snapshot, after a restore, or for ``verify.rowCounts.mode: content``;
- :func:`of_archive`: the table's COPY block in ``pg_restore --data-only``'s
  script of the archive — what a ``restore --table`` must have put back.

Must not: write to the database, or hold more than one hash per row in memory.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from typing import Any

from alembic_operator.api import errors, redact
from alembic_operator.job.database import identifiers, pgtools, postgres

#: Columns pg_dump copies: live, not generated (``attgenerated`` exists from PostgreSQL 12).
COLUMNS_SQL = """
SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::pg_catalog.regclass
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum"""


#: pg_dump's output settings (its setup_connection), so the server writes the lines pg_dump wrote.
OUTPUT_SETTINGS_SQL = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3"


class Digest:
    """Collects row lines; :meth:`value` gives ``"<rows>:<sha256>"``."""

    def __init__(self) -> None:
        self._rows: list[bytes] = []
        self._partial = b""

    def add_line(self, line: bytes) -> None:
        self._rows.append(hashlib.sha256(line).digest())

    def feed(self, chunk: bytes) -> None:
        """Add COPY text output as it arrives (lines may straddle chunks)."""
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self.add_line(line)

    def hashes(self) -> list[bytes]:
        """Each row's SHA-256, sorted (a multiset of rows: :func:`missing`)."""
        if self._partial:
            self.add_line(self._partial)
            self._partial = b""
        return sorted(self._rows)

    def value(self) -> str:
        rows = self.hashes()
        total = hashlib.sha256()
        for row in rows:
            total.update(row)
        return f"{len(rows)}:{total.hexdigest()}"


def columns_of(conn: postgres.Connection, table: identifiers.Table) -> list[str]:
    """The columns pg_dump copies of ``table``, in attribute order."""
    return [str(r["attname"]) for r in conn.fetch(COLUMNS_SQL, table[0], table[1])]


def of_table(conn: postgres.Connection, table: identifiers.Table) -> str:
    """The digest of ``table``'s rows as ``conn`` sees them (its snapshot, if in a transaction)."""
    return table_rows(conn, table).value()


def table_rows(conn: postgres.Connection, table: identifiers.Table, columns: list[str] | None = None) -> Digest:
    """``table``'s rows (``columns``, default all pg_dump copies) as ``conn`` sees them."""
    columns = columns_of(conn, table) if columns is None else columns
    conn.execute(OUTPUT_SETTINGS_SQL)
    digest = Digest()

    async def sink(chunk: bytes) -> None:
        digest.feed(bytes(chunk))

    conn._run(conn._conn.copy_from_table(table[1], schema_name=table[0], columns=columns, output=sink))
    return digest


def of_tables(conn: postgres.Connection, tables: list[str]) -> dict[str, str]:
    """``{label: digest}`` of each table (labels: see identifiers)."""
    return {t: of_table(conn, identifiers.parse(t)) for t in tables}


def of_archive(*, tool: pgtools.Tool, archive_path: str, table: identifiers.Table) -> str:
    """The digest of the rows the archive holds for ``table`` (its COPY block in pg_restore's script)."""
    return archive_rows(tool=tool, archive_path=archive_path, table=table)[0].value()


def archive_rows(*, tool: pgtools.Tool, archive_path: str, table: identifiers.Table) -> tuple[Digest, list[str]]:
    """The archive's rows of ``table`` and the columns its COPY names (in that order)."""
    proc = subprocess.run(
        [tool.path, "--data-only", "-n", table[0], "-t", table[1], "-f", "-", archive_path],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        message = redact.redact(lines[-1] if lines else "no message")
        raise errors.RestoreFailed(f"pg_restore could not read {identifiers.label(*table)}: {message[:300]}")
    digest, inside = Digest(), False
    columns: list[str] = []
    for line in proc.stdout.split(b"\n"):
        if not inside:
            inside = line.startswith(b"COPY ") and line.endswith(b" FROM stdin;")
            columns = copy_columns(line.decode()) if inside else columns
        elif line == b"\\.":
            inside = False
        else:
            digest.add_line(line)
    return digest, columns


_IDENT = re.compile(r'"((?:[^"]|"")*)"|([^\s.,()"]+)')


def copy_columns(header: str) -> list[str]:
    """The column names of pg_restore's ``COPY s.t (a, "b c") FROM stdin;`` (names quoted as pg_dump does)."""
    names: list[str] = []
    pos, depth = len("COPY "), 0
    while pos < len(header):
        char = header[pos]
        match = _IDENT.match(header, pos)
        if char == "(":
            depth += 1
        elif char == ")":
            break
        elif match and match.end() > pos:
            if depth:
                names.append(match[1].replace('""', '"') if match[1] is not None else match[2])
            pos = match.end()
            continue
        pos += 1
    return names


def missing(*, backup: list[bytes], now: list[bytes]) -> int:
    """How many of the backup's rows (sorted hashes) are not among ``now``'s (a changed row counts once)."""
    gone, j = 0, 0
    for row in backup:
        while j < len(now) and now[j] < row:
            j += 1
        if j < len(now) and now[j] == row:
            j += 1
        else:
            gone += 1
    return gone


def compare(*, expected: dict[str, str], actual: dict[str, str]) -> list[dict[str, Any]]:
    """The tables whose digests differ: ``[{"table", "expected", "actual"}]``."""
    return [
        {"table": t, "expected": expected[t], "actual": actual.get(t)}
        for t in sorted(expected)
        if expected[t] != actual.get(t)
    ]
