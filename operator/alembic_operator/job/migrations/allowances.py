"""Data changes a revision declares it intends, read from the revision files (offline, no database).

An app's history moves data on purpose: a table emptied into a new one, a
legacy table dropped, one renamed. Verify would call each a lost row. A
revision says so next to its code, with a module-level attribute::

    alembic_operator_allow = {"shrink": ["legacy_order"], "drop": ["legacy_order"],
                              "rename": {"customer": "client"}}

Only the revisions between the database's revision and the target count.
The plan step lists them (``declaredAllowances``) so the run can hand them to
verify, whose message names every allowance it used.

Must not: import anything but the revision files Alembic already loaded, or
accept a malformed declaration silently (RevisionError names the revision).
"""

from __future__ import annotations

from typing import Any

from alembic.script import ScriptDirectory

from alembic_operator.api import errors

ATTRIBUTE = "alembic_operator_allow"
KINDS = ("shrink", "drop", "rename")


def declared(script: ScriptDirectory, pending: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every allowance the ``pending`` revisions declare, in upgrade order: revision, table, kind (and ``to``)."""
    found: list[dict[str, Any]] = []
    for rev in pending:
        revision = script.get_revision(rev)
        value = getattr(getattr(revision, "module", None), ATTRIBUTE, None)
        if value is None:
            continue
        if not isinstance(value, dict) or set(value) - set(KINDS):
            raise errors.RevisionError(
                f"revision {rev}: {ATTRIBUTE} must be a dict with keys {', '.join(KINDS)}; got {value!r}"
            )
        for kind in ("shrink", "drop"):
            tables = value.get(kind) or []
            if isinstance(tables, str) or not all(isinstance(t, str) for t in tables):
                raise errors.RevisionError(f"revision {rev}: {ATTRIBUTE}[{kind!r}] must be a list of table names")
            found += [{"revision": rev, "table": t, "kind": kind} for t in tables]
        renames = value.get("rename") or {}
        if not isinstance(renames, dict):
            raise errors.RevisionError(f"revision {rev}: {ATTRIBUTE}['rename'] must map old table names to new ones")
        found += [{"revision": rev, "table": old, "kind": "rename", "to": new} for old, new in renames.items()]
    return found


def tables_allowed_to_decrease(allowances: list[dict[str, Any]]) -> list[str]:
    """What verify's ``--allow-decrease`` takes: tables declared to shrink or be dropped (renames match by OID)."""
    return sorted({a["table"] for a in allowances if a["kind"] in ("shrink", "drop")})
