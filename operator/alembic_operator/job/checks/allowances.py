"""Which allowance lets a table shrink, vanish or be renamed, and who gave it. Pure: no I/O.

Two sources, both handed to verify as arguments:

- the run's spec (``--allow-decrease GLOB``): the table may lose rows or disappear;
- the revisions between the backup and the target, which declare the data
  changes they intend (``alembic_operator_allow`` in a revision file, read
  offline by the plan step; ``--declared-allowance REV:KIND:TABLE[=TO]``):
  ``shrink`` (rows may go, the table stays), ``drop`` (the table goes) and
  ``rename`` (the table goes and ``TO`` holds at least its rows).

A table is matched as :func:`alembic_operator.job.checks.rowcounts.matches`
does (a name without a dot: that table in any schema; globs work).
Verify names every allowance it used, so a pass never hides a table that
vanished or was emptied.

Must not: decide anything about a table no allowance names (:mod:`.rowcounts` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alembic_operator.api import errors
from alembic_operator.api.results_allowances import AllowanceUsed
from alembic_operator.job.checks import rowcounts

DECLARED_KINDS = ("shrink", "drop", "rename")
#: The kind of an allowance from the run's spec: the table may lose rows or disappear.
SPEC_KIND = "decrease"


@dataclass(frozen=True)
class Allowance:
    """One allowance: a table (or glob), what may happen to it, and the revision that declared it (None: the spec)."""

    pattern: str
    kind: str
    revision: str | None = None
    to: str | None = None


def from_spec(patterns: Iterable[str]) -> list[Allowance]:
    """``--allow-decrease`` globs as allowances of the spec."""
    return [Allowance(pattern=p, kind=SPEC_KIND) for p in patterns]


def parse_declared(values: Iterable[str]) -> list[Allowance]:
    """``--declared-allowance REV:KIND:TABLE[=TO]`` values; InvalidInput names a malformed one."""
    found: list[Allowance] = []
    for value in values:
        revision, kind, table = [*value.split(":", 2), "", ""][:3]
        table, _, to = table.partition("=") if kind == "rename" else (table, "", "")
        if not revision or kind not in DECLARED_KINDS or not table or (kind == "rename") != bool(to):
            raise errors.InvalidInput(
                f"--declared-allowance {value!r} is not REV:KIND:TABLE (KIND shrink or drop) or REV:rename:OLD=NEW"
            )
        found.append(Allowance(pattern=table, kind=kind, revision=revision, to=to or None))
    return found


def allowing(table: str, *, after: int | None, allowances: Sequence[Allowance]) -> Allowance | None:
    """The first allowance that lets ``table`` have ``after`` rows (None: gone): declared ones before the spec's."""
    ordered = sorted(allowances, key=lambda a: a.revision is None)
    for allowance in ordered:
        if not rowcounts.matches(table, allowance.pattern):
            continue
        if allowance.kind == SPEC_KIND:
            return allowance
        if allowance.kind == "shrink" and after is not None:
            return allowance
        if allowance.kind == "drop" and after is None:
            return allowance
    return None


def declared_renames(
    *, allowances: Sequence[Allowance], before: Mapping[str, int], after: Mapping[str, int]
) -> dict[str, tuple[str, Allowance]]:
    """Declared renames that happened: ``{old label: (new label, allowance)}``.

    The old table is gone and exactly one table matching ``TO`` is new (not in
    the backup); with several candidates the one in the old table's schema wins.
    """
    found: dict[str, tuple[str, Allowance]] = {}
    new_tables = [t for t in after if t not in before]
    for allowance in (a for a in allowances if a.kind == "rename" and a.to):
        for old in (t for t in before if t not in after and rowcounts.matches(t, allowance.pattern)):
            candidates = [t for t in new_tables if rowcounts.matches(t, allowance.to or "")]
            same_schema = [t for t in candidates if t.rsplit(".", 1)[0] == old.rsplit(".", 1)[0]]
            chosen = same_schema if len(same_schema) == 1 else candidates
            if len(chosen) == 1:
                found.setdefault(old, (chosen[0], allowance))
    return found


def rename_declared(old: str, new: str, allowances: Sequence[Allowance]) -> Allowance | None:
    """The declaration of a rename verify found by table oid, if a revision declared it."""
    for allowance in allowances:
        renamed = allowance.kind == "rename" and rowcounts.matches(old, allowance.pattern)
        if renamed and rowcounts.matches(new, allowance.to or ""):
            return allowance
    return None


def used(table: str, *, before: int, after: int | None, allowance: Allowance, to: str | None = None) -> AllowanceUsed:
    """The record of an allowance verify used on ``table`` (renamed when ``to`` is given)."""
    change = "renamed" if to is not None else "dropped" if after is None else "shrank"
    return AllowanceUsed(
        table=table,
        change=change,
        before=before,
        after=after,
        to=to,
        revision=allowance.revision,
        pattern=allowance.pattern,
    )


def summarize(used: Sequence[AllowanceUsed]) -> str:
    """``allowed: legacy_order dropped (400 rows; declared by revision 0003); ...`` ('' when none)."""
    if not used:
        return ""
    text = "; ".join(u.describe() for u in used[: rowcounts.MAX_LISTED])
    if len(used) > rowcounts.MAX_LISTED:
        text += f"; and {len(used) - rowcounts.MAX_LISTED} more"
    return f"allowed: {text}"
