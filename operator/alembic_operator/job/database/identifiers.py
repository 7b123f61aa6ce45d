"""Table names as data: a (schema, table) pair, its one-string label, and SQL payloads that carry names.

A name may hold anything PostgreSQL allows — dots, quotes, ``$$``, spaces,
backslashes, unicode, 63 bytes — so a name is never split on a dot and never
spliced into SQL text. Three forms:

- :data:`Table`, the pair ``(schema, table)``: what the manifest stores (as a
  two-element JSON array) and what queries take as parameters.
- :func:`label`: one string per pair, used as a dict key in memory, in messages
  and in results. A part is written bare unless it holds a dot, a double quote,
  white space or a control character, or is empty; then it is double-quoted
  with ``"`` doubled, as SQL does (``public.task``, ``"a.b".it's`` or ``public."say ""hi"" "``).
  :func:`parse` is its exact inverse, so a label names exactly one table.
- :func:`payload`: an SQL expression that yields a JSON value from a hex
  literal. Script text sent to psql carries names only this way, so psql sees
  nothing but ``[0-9a-f]`` where a name would be: no quote to close, no
  dollar tag to end, no backslash command to hide.

Must not: build SQL text from a name (quote on the server with ``format('%I')``
or pass a parameter), or do I/O.
"""

from __future__ import annotations

import json
from typing import Any

Table = tuple[str, str]

DEFAULT_SCHEMA = "public"


def _needs_quotes(part: str) -> bool:
    return not part or any(c in '."' or c.isspace() or not c.isprintable() for c in part)


def _part(part: str) -> str:
    return '"' + part.replace('"', '""') + '"' if _needs_quotes(part) else part


def label(schema: str, table: str) -> str:
    """The one-string form of a pair (see module docstring); :func:`parse` inverts it."""
    return f"{_part(schema)}.{_part(table)}"


def _parts(text: str) -> list[str]:
    """Split ``text`` on dots outside double quotes; ValueError if a quote is left open or misplaced."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            out, i = [], i + 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError(f"unterminated quote in {text!r}")
                out.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    out.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            parts.append("".join(out))
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            bare = text[i:j]
            if '"' in bare:
                raise ValueError(f"misplaced quote in {text!r}")
            parts.append(bare)
            i = j
        if i == n:
            return parts
        if text[i] != ".":
            raise ValueError(f"expected a dot after a quoted name in {text!r}")
        i += 1


def parse(text: str, *, default_schema: str | None = None) -> Table:
    """The pair a label names; with ``default_schema``, a lone table name is taken to be in it.

    ValueError when ``text`` is not a label (wrong quoting, three parts, or one part without a default).
    """
    parts = _parts(text)
    if len(parts) == 1 and default_schema is not None:
        return default_schema, parts[0]
    if len(parts) != 2:
        raise ValueError(f'{text!r} is not schema.table (quote a name holding a dot: "my.schema".table)')
    return parts[0], parts[1]


def from_v1_key(key: str) -> Table:
    """A round-1 manifest key ``schema.table`` (split on the first dot, as round 1 wrote it)."""
    schema, _, table = key.partition(".")
    return schema, table


def table_name(value: Any) -> Table:
    """A pair read back from JSON (``["schema", "table"]``); ValueError for anything else."""
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{value!r} is not a [schema, table] pair")
    return value[0], value[1]


def payload(value: Any) -> str:
    """An SQL expression for the JSON ``value`` whose literal holds only hex digits (see module docstring)."""
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return f"pg_catalog.convert_from(pg_catalog.decode('{data.hex()}', 'hex'), 'UTF8')::pg_catalog.jsonb"
