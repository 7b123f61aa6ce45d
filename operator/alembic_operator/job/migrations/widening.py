"""Whether a column type change only widens (every old value fits the new type unchanged). Pure: no I/O.

The offline SQL says only the new type: ``ALTER TABLE t ALTER COLUMN c TYPE
VARCHAR(200)``. Some new types take any old value (``text``, ``varchar``
without a length, ``bigint``, ``numeric`` without precision, ``double
precision``). For the others the old type decides, and it comes from the
revision's own op: ``op.alter_column(..., existing_type=sa.VARCHAR(100))``,
which autogenerate writes; :mod:`.rendering` puts it in the plan as a hint
comment above the statement (:data:`HINT`, :func:`hint`).

Known old type: ``varchar(n)`` → ``varchar(m)``, m ≥ n; ``smallint`` → ``integer``;
``numeric(p, s)`` → ``numeric(p2, s2)`` keeping as many integer and fraction
digits; the same type again. Anything else, or no old type, counts as a change
that may lose data.

Must not: connect, or trust anything but the words of the two types.
"""

from __future__ import annotations

import re

#: The comment :mod:`.rendering` writes above a type change whose revision names the existing type.
HINT = "-- alembic-operator: existing type"
_HINT = re.compile(rf"^{re.escape(HINT)} of (?P<column>\S+): (?P<type>[^\n]+)$", re.M)
_TYPE = re.compile(r"^(?P<name>[A-Z][A-Z0-9 ]*?)\s*(?:\(\s*(?P<args>\d+(?:\s*,\s*\d+)?)\s*\))?$")

#: New types every old value fits whatever it was (when no size or precision follows).
_WIDE = {"TEXT", "VARCHAR", "BIGINT", "NUMERIC"}
_WIDE_ANY_SIZE = {"DOUBLE PRECISION"}
_SYNONYMS = {
    "CHARACTER VARYING": "VARCHAR",
    "INT8": "BIGINT",
    "INT4": "INTEGER",
    "INT": "INTEGER",
    "INT2": "SMALLINT",
    "DECIMAL": "NUMERIC",
    "FLOAT8": "DOUBLE PRECISION",
}
#: old → the types it widens into (integers by range).
_WIDER_INTEGERS = {"SMALLINT": {"INTEGER", "BIGINT"}, "INTEGER": {"BIGINT"}}
_INTEGERS = {"SMALLINT", "INTEGER", "BIGINT"}


def hint(*, column: str, existing_type: str) -> str:
    """The plan's comment naming a column's type before the change (one line)."""
    return f"{HINT} of {column}: {' '.join(existing_type.split())}"


def hinted_type(statement: str) -> str | None:
    """The existing type a hint comment inside ``statement`` names, or None."""
    found = _HINT.search(statement)
    return found.group("type").strip() if found else None


def widens(new: str, old: str | None = None) -> bool:
    """Whether changing a column from ``old`` (None: unknown) to ``new`` loses nothing."""
    parsed_new = _parse(new)
    if parsed_new is None:  # USING, COLLATE, arrays, anything we do not read: may lose data
        return False
    name, args = parsed_new
    parsed_old = _parse(old) if old else None
    if name == "BIGINT" and parsed_old is not None and parsed_old[0] not in _INTEGERS:
        return False  # numeric(10, 2) → bigint drops the fraction
    if name in _WIDE_ANY_SIZE or (name in _WIDE and not args):
        return True
    if parsed_old is None:
        return False
    old_name, old_args = parsed_old
    if (old_name, old_args) == (name, args):
        return True
    if name == "VARCHAR" and old_name == "VARCHAR" and old_args and args:
        return args[0] >= old_args[0]
    if name == "NUMERIC" and old_name == "NUMERIC" and old_args and args:
        old_scale, scale = (*old_args, 0)[1], (*args, 0)[1]
        return scale >= old_scale and args[0] - scale >= old_args[0] - old_scale
    return not args and name in _WIDER_INTEGERS.get(old_name, set())


def _parse(type_text: str) -> tuple[str, tuple[int, ...]] | None:
    """``('VARCHAR', (100,))`` from ``character varying(100)``; None for what is not a plain type."""
    found = _TYPE.match(" ".join(type_text.upper().split()))
    if found is None:
        return None
    name = _SYNONYMS.get(found.group("name").strip(), found.group("name").strip())
    args = tuple(int(a) for a in found.group("args").split(",")) if found.group("args") else ()
    return name, args
