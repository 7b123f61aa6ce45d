"""Compare row counts before and after: the verify policy and the restore proof. Pure: no I/O.

Tables are named by their label (``schema.table``, parts holding a dot quoted:
see :mod:`alembic_operator.job.database.identifiers`). A pattern without a dot
matches the table name in any schema; with a dot it matches the label; both are globs
(``fnmatch``), so ``audit_*`` or ``staging.*`` work.

- :func:`check_policy` (verify): no table may lose rows or disappear unless
  allowed; tables left out by include/exclude are not checked; new tables are fine.
- :func:`compare_exact` (restore, backup --verify restore): any difference fails.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from alembic_operator.job.database import identifiers

#: At most this many violations are named in a message or a result.
MAX_LISTED = 10


def matches(name: str, pattern: str) -> bool:
    """Whether ``schema.table`` matches ``pattern`` (see module docstring)."""
    pattern = pattern.strip()
    if not pattern:
        return False
    if "." in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    try:
        table = identifiers.parse(name)[1]
    except ValueError:
        table = name
    return fnmatch.fnmatchcase(table, pattern)


def split_patterns(values: list[str] | None) -> list[str]:
    """Flatten repeatable comma-separated flags (``--allow-decrease a,b --allow-decrease c``)."""
    return [p.strip() for v in (values or []) for p in v.split(",") if p.strip()]


def selected(name: str, *, include: list[str], exclude: list[str]) -> bool:
    """In scope when it matches an include (or there are none) and no exclude."""
    if include and not any(matches(name, p) for p in include):
        return False
    return not any(matches(name, p) for p in exclude)


@dataclass(frozen=True)
class Violation:
    """A table that lost rows (``after`` set) or disappeared (``after`` None)."""

    table: str
    before: int
    after: int | None

    def describe(self) -> str:
        short = self.table[len("public.") :] if self.table.startswith("public.") else self.table
        if self.after is None:
            return f"{short} disappeared"
        return f"{short} lost {self.before - self.after} rows ({self.before} → {self.after})"

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class TableCheck:
    table: str
    before: int
    after: int | None
    status: str
    """ok | lost | disappeared | allowed | excluded"""
    allowed_by: object = None
    """For ``allowed``: what allowed it (an ``allow_decrease`` pattern, or what ``allow`` returned)."""


def check_policy(
    *,
    before: dict[str, int],
    after: dict[str, int],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    allow_decrease: list[str] | None = None,
    tolerance: float = 0.0,
    allow: Callable[[str, int | None], object] | None = None,
) -> tuple[list[TableCheck], list[Violation]]:
    """Apply the verify policy; ``tolerance`` (a fraction) forgives small drops of estimates.

    ``allow(table, rows_after)`` (rows_after None: gone) returns what allows that loss, or None;
    it is asked after the ``allow_decrease`` patterns (see :mod:`.allowances`).
    """
    include, exclude, allowed = include or [], exclude or [], allow_decrease or []
    checks: list[TableCheck] = []
    violations: list[Violation] = []
    for table in sorted(before):
        rows_before, rows_after = before[table], after.get(table)
        if not selected(table, include=include, exclude=exclude):
            checks.append(TableCheck(table, rows_before, rows_after, "excluded"))
            continue
        lost = rows_after is None or rows_after < rows_before - tolerance * rows_before
        if not lost:
            checks.append(TableCheck(table, rows_before, rows_after, "ok"))
        elif (by := _allowed_by(table, rows_after, allowed, allow)) is not None:
            checks.append(TableCheck(table, rows_before, rows_after, "allowed", by))
        else:
            checks.append(TableCheck(table, rows_before, rows_after, "disappeared" if rows_after is None else "lost"))
            violations.append(Violation(table, rows_before, rows_after))
    return checks, violations


def _allowed_by(
    table: str, rows_after: int | None, patterns: list[str], allow: Callable[[str, int | None], object] | None
) -> object:
    pattern = next((p for p in patterns if matches(table, p)), None)
    if pattern is not None:
        return pattern
    return allow(table, rows_after) if allow is not None else None


def renames(*, before: dict[str, int], now: dict[int, str]) -> dict[str, str]:
    """Tables the migration renamed or moved to another schema: ``{label then: label now}``, matched by
    table oid (``before``: the manifest's ``tableOids``; ``now``: oid → label). A table whose label
    still exists is not renamed (its oid may even differ: dropped and recreated)."""
    labels_now = set(now.values())
    return {
        label: now[oid]
        for label, oid in sorted(before.items())
        if label not in labels_now and now.get(oid, label) != label
    }


def summarize(violations: list[Violation]) -> str:
    """``"task lost 120 rows (3000 → 2880); comment disappeared"``, at most MAX_LISTED named."""
    text = "; ".join(v.describe() for v in violations[:MAX_LISTED])
    if len(violations) > MAX_LISTED:
        text += f"; and {len(violations) - MAX_LISTED} more"
    return text


@dataclass(frozen=True)
class Mismatch:
    """A table whose restored count differs from the manifest (``None`` = missing / unexpected)."""

    table: str
    expected: int | None
    actual: int | None

    def describe(self) -> str:
        if self.actual is None:
            return f"{self.table} is missing"
        if self.expected is None:
            return f"{self.table} is not in the backup"
        return f"{self.table} has {self.actual} rows, expected {self.expected}"

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "expected": self.expected, "actual": self.actual}


def compare_exact(*, expected: dict[str, int], actual: dict[str, int], only: list[str] | None = None) -> list[Mismatch]:
    """Every difference between manifest and database; ``only`` limits to those tables."""
    names = sorted(set(only) if only is not None else set(expected) | set(actual))
    return [Mismatch(t, expected.get(t), actual.get(t)) for t in names if expected.get(t) != actual.get(t)]


def describe_mismatches(mismatches: list[Mismatch]) -> str:
    text = "; ".join(m.describe() for m in mismatches[:MAX_LISTED])
    if len(mismatches) > MAX_LISTED:
        text += f"; and {len(mismatches) - MAX_LISTED} more"
    return text
