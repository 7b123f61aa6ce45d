"""Classify SQL statements that can lose data or break running code. Pure: no I/O.

``plan`` feeds it the offline SQL that ``alembic upgrade --sql`` prints. The
checks work on a light tokenisation, not a full parser: comments and string
literals (including dollar quoting) are blanked out first so a ``'where'``
in a literal or a ``-- DROP TABLE`` in a comment never counts, and parentheses
are tracked so a ``WHERE`` inside a sub-select does not make an ``UPDATE``
look targeted.

Kinds reported (one statement may have several):

``drop_table`` ``drop_column`` ``drop_schema`` ``drop_index`` ``drop_sequence``
``drop_type`` ``drop_view`` ``drop_constraint`` (primary key, foreign key, check,
unique: the name does not say which) ``truncate`` ``delete_without_where``
``update_without_where`` ``alter_column_type`` ``rename``.

A type change that only widens is not flagged (:mod:`.widening`: ``text``,
``varchar`` without a length, ``bigint``...; ``varchar(n)`` → a larger ``n``
when the revision's ``existing_type`` says the old length, which the plan
writes as a hint comment above the statement).
DO blocks, functions, procedures and CALLs are listed apart as *unchecked*
(:func:`unchecked`): what they do runs inside the server.

Statements against Alembic's own version table are never destructive.

Must not: execute, connect, or guess at semantics beyond the statement text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from alembic_operator.job.migrations import widening

#: Prefix of the comment ``plan`` puts above each destructive statement.
MARK = "-- alembic-operator: DESTRUCTIVE"

_RUNNING = re.compile(r"^-- Running upgrade (?P<from>[^\s]*) -> (?P<to>\S+)", re.M)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*|\"(?:[^\"]|\"\")*\"|[(),;]|[^\sA-Za-z_\"(),;]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")

_DROP_KINDS = {
    "TABLE": "drop_table",
    "SCHEMA": "drop_schema",
    "INDEX": "drop_index",
    "SEQUENCE": "drop_sequence",
    "TYPE": "drop_type",
    "DOMAIN": "drop_type",
    "VIEW": "drop_view",
}


@dataclass(frozen=True)
class Finding:
    """One destructive statement: the revision that emits it, what kind, and the statement (shortened)."""

    revision: str | None
    kind: str
    statement: str

    def as_dict(self) -> dict[str, str | None]:
        return {"revision": self.revision, "kind": self.kind, "statement": self.statement}


def shorten(statement: str, limit: int = 160) -> str:
    """One line, whitespace collapsed, at most ``limit`` characters."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _quoted_end(sql: str, start: int) -> int:
    """Index just past the quoted string or identifier opening at ``start`` (doubled quotes escape)."""
    quote, j, n = sql[start], start + 1, len(sql)
    while j < n:
        if sql[j] == quote and j + 1 < n and sql[j + 1] == quote:
            j += 2
        elif sql[j] == quote:
            return j + 1
        else:
            j += 1
    return n


def _blank(sql: str) -> tuple[str, list[int]]:
    """Return ``sql`` with comments and literals replaced by spaces, and the offsets of top-level ``;``."""
    out: list[str] = []
    ends: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif ch == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(" " * (j - i))
            i = j
        elif ch == "'":
            j = _quoted_end(sql, i)
            out.append("'" + " " * max(0, j - i - 2) + ("'" if j - i >= 2 else ""))
            i = j
        elif ch == '"':
            # a quoted identifier: kept as is (it names things), but its ; and -- are not syntax
            j = _quoted_end(sql, i)
            out.append(sql[i:j])
            i = j
        elif ch == "$" and (m := _DOLLAR_TAG.match(sql, i)) and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = m.group(0)
            j = sql.find(tag, m.end())
            j = n if j < 0 else j + len(tag)
            out.append("'" + " " * max(0, j - i - 2) + "'")
            i = j
        else:
            if ch == ";":
                ends.append(i)
            out.append(ch)
            i += 1
    return "".join(out), ends


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons; comments-only pieces are dropped. Statements keep no ``;``."""
    blanked, ends = _blank(sql)
    pieces: list[str] = []
    start = 0
    for end in [*ends, len(sql)]:
        text = sql[start:end]
        if blanked[start:end].strip():
            pieces.append(text.strip())
        start = end + 1
    return pieces


def _tokens(statement: str) -> list[tuple[str, int]]:
    """Upper-cased tokens with their parenthesis depth, comments and literals removed."""
    blanked, _ = _blank(statement)
    tokens: list[tuple[str, int]] = []
    depth = 0
    for match in _WORD.finditer(blanked):
        tok = match.group(0)
        if tok == "(":
            tokens.append((tok, depth))
            depth += 1
        elif tok == ")":
            depth = max(0, depth - 1)
            tokens.append((tok, depth))
        else:
            tokens.append((tok if tok.startswith('"') else tok.upper(), depth))
    return tokens


def _split_top_commas(tokens: list[tuple[str, int]]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for tok, depth in tokens:
        if tok == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def _touches_version_table(words: list[str]) -> bool:
    return any(w.strip('"').lower() == "alembic_version" or w.lower().endswith(".alembic_version") for w in words)


def _skip_name(words: list[str], i: int) -> int:
    """Index just past a possibly schema-qualified name starting at ``words[i]``."""
    i += 1
    while i + 1 < len(words) and words[i] == ".":
        i += 2
    return i


def _alter_table_kinds(actions: list[list[str]], existing_type: str | None = None) -> list[str]:
    kinds: list[str] = []
    for action in actions:
        head = action[0]
        if head == "DROP":
            kinds.append("drop_constraint" if action[1:2] == ["CONSTRAINT"] else "drop_column")
        elif head == "ALTER":
            # ALTER [COLUMN] name [SET DATA] TYPE ...
            i = 2 if action[1:2] == ["COLUMN"] else 1
            after = action[_skip_name(action, i) :]
            typed = 1 if after[:1] == ["TYPE"] else 3 if after[:3] == ["SET", "DATA", "TYPE"] else 0
            if typed and not widening.widens(" ".join(after[typed:]), existing_type):
                kinds.append("alter_column_type")
        elif head == "RENAME" and action[1:2] != ["CONSTRAINT"]:
            kinds.append("rename")
    return kinds


def classify(statement: str) -> list[str]:
    """The destructive kinds of one statement (empty when it is harmless)."""
    tokens = _tokens(statement)
    words = [t for t, _ in tokens]
    top = [t for t, d in tokens if d == 0]
    if not top or _touches_version_table(words):
        return []
    verb = top[0]
    if verb == "WITH":
        # the main statement is the first top-level DML keyword after the CTE list
        verb = next((t for t in top[1:] if t in {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"}), "WITH")
        top = top[top.index(verb) :] if verb in top else top
    if verb == "DROP" and len(top) > 1:
        obj = top[1]
        if obj == "MATERIALIZED" and len(top) > 2:
            obj = "VIEW"
        kind = _DROP_KINDS.get(obj)
        return [kind] if kind else []
    if verb == "TRUNCATE":
        return ["truncate"]
    if verb == "DELETE":
        return [] if "WHERE" in top else ["delete_without_where"]
    if verb == "UPDATE":
        return [] if "WHERE" in top else ["update_without_where"]
    if verb == "ALTER" and len(top) > 1:
        obj = top[1]
        if obj == "TABLE":
            # ALTER TABLE [IF EXISTS] [ONLY] [schema.]name action[, action ...]
            i = 2
            while i < len(top) and top[i] in {"IF", "EXISTS", "ONLY"}:
                i += 1
            i = _skip_name(top, i)
            actions = _split_top_commas(tokens[_nth_top_index(tokens, i) :])
            # the revision's existing_type (a hint comment, see widening) holds for a lone type change only
            lone = sum(1 for a in actions if a[:1] == ["ALTER"]) == 1
            return _alter_table_kinds(actions, widening.hinted_type(statement) if lone else None)
        if "RENAME" in top:
            return ["rename"]
    return []


def unchecked(statement: str) -> str | None:
    """``do_block``, ``function`` or ``call`` for code that runs inside the server (the plan cannot see into it)."""
    top = [t for t, d in _tokens(statement) if d == 0]
    if top[:1] == ["DO"]:
        return "do_block"
    if top[:1] == ["CALL"]:
        return "call"
    if top[:1] == ["CREATE"]:
        rest = top[3:] if top[1:3] == ["OR", "REPLACE"] else top[1:]
        if rest[:1] in (["FUNCTION"], ["PROCEDURE"]):
            return "function"
    return None


def _nth_top_index(tokens: list[tuple[str, int]], n: int) -> int:
    """Index in ``tokens`` of the ``n``-th (0-based) top-level token, or ``len(tokens)``."""
    seen = 0
    for idx, (_, depth) in enumerate(tokens):
        if depth == 0:
            if seen == n:
                return idx
            seen += 1
    return len(tokens)


def scan(sql: str) -> list[Finding]:
    """Every destructive statement of an offline migration script, attributed to its revision.

    Alembic's offline output announces each revision with ``-- Running upgrade A -> B``;
    statements after that line belong to revision B.
    """
    findings: list[Finding] = []
    for revision, statement in attributed_statements(sql):
        for kind in classify(statement):
            findings.append(Finding(revision=revision, kind=kind, statement=shorten(_strip_comments(statement))))
    return findings


def attributed_statements(sql: str) -> list[tuple[str | None, str]]:
    """Statements with the revision that emits them (``None`` before the first revision marker)."""
    result: list[tuple[str | None, str]] = []
    markers = [(m.start(), m.group("to")) for m in _RUNNING.finditer(sql)]
    blanked, ends = _blank(sql)
    start = 0
    for end in [*ends, len(sql)]:
        if blanked[start:end].strip():
            revision = None
            for pos, rev in markers:
                if pos < end:
                    revision = rev
            result.append((revision, sql[start:end].strip()))
        start = end + 1
    return result


def _strip_comments(statement: str) -> str:
    lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines)


def annotate(sql: str) -> str:
    """Return the script with a ``-- alembic-operator: DESTRUCTIVE (kind)`` line above each destructive statement."""

    def mark(statement: str) -> str | None:
        kinds = classify(statement)
        return f"{MARK} ({', '.join(kinds)})" if kinds else None

    return comment_each(sql, mark)


def comment_each(sql: str, comment: Callable[[str], str | None]) -> str:
    """The script with ``comment(statement)`` (when not None) as a line just above each statement's text."""
    blanked, ends = _blank(sql)
    out: list[str] = []
    start = 0
    for end in [*ends, len(sql)]:
        chunk = sql[start : end + 1] if end < len(sql) else sql[start:]
        body = sql[start:end]
        line = comment(body) if blanked[start:end].strip() else None
        if line is not None:
            # just before the statement text, after any leading comments/blank lines
            lead_len = len(body) - len(_lstrip_comments(body))
            chunk = chunk[:lead_len] + line + "\n" + chunk[lead_len:]
        out.append(chunk)
        start = end + 1
    return "".join(out)


def names(statement: str) -> set[str]:
    """Every word of the statement as a lower-case name without quotes (comments and literals left out)."""
    return {t.strip('"').replace('""', '"').lower() for t, _ in _tokens(statement) if t[:1].isalpha() or t[:1] in '"_'}


def type_change(statement: str) -> tuple[str, str, str] | None:
    """``(table, column, new type)`` of a statement that only changes one column's type, else None.

    Unquoted names are folded to lower case as PostgreSQL does; quoted ones keep their quotes
    (the table, for ``to_regclass``) or lose them (the column, as ``pg_attribute`` names it).
    """
    tokens = _tokens(statement)
    top = [t for t, d in tokens if d == 0]
    if top[:2] != ["ALTER", "TABLE"]:
        return None
    i = 2
    while i < len(top) and top[i] in {"IF", "EXISTS", "ONLY"}:
        i += 1
    start, i = i, _skip_name(top, i)
    actions = _split_top_commas(tokens[_nth_top_index(tokens, i) :])
    if len(actions) != 1 or actions[0][:1] != ["ALTER"]:
        return None
    action = actions[0]
    j = 2 if action[1:2] == ["COLUMN"] else 1
    after = action[_skip_name(action, j) :]
    typed = 1 if after[:1] == ["TYPE"] else 3 if after[:3] == ["SET", "DATA", "TYPE"] else 0
    if not typed or j >= len(action):
        return None
    table = "".join(part if part.startswith('"') else part.lower() for part in top[start:i])
    column = action[j]
    column = column[1:-1].replace('""', '"') if column.startswith('"') else column.lower()
    return table, column, " ".join(after[typed:])


def _lstrip_comments(text: str) -> str:
    """``text`` without its leading whitespace and ``--`` comment lines."""
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j + 1
        else:
            break
    return text[i:]
