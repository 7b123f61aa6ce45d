"""Revisions: what the image's scripts contain and where the database stands.

Three steps ask the same questions before doing anything: which head(s) do
the scripts have, is the database's revision one of them (or at least known),
and which revisions lie between the database and a target. The script side is
pure graph logic over Alembic's :class:`~alembic.script.ScriptDirectory`
(no database; unit-tested on the example app); :func:`read_database_heads` is
the one query, run on an asyncpg connection the caller owns.

Must not: run migrations or write to the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from alembic_operator.api import errors, text

DEFAULT_VERSION_TABLE = "alembic_version"


def load_config(path: str | os.PathLike[str] = "alembic.ini") -> Config:
    """The Alembic config at ``path``; InvalidInput when it is missing or has no script_location.

    ``configure_logger`` is turned off so a template env.py leaves the step's logging alone.
    """
    ini = Path(path)
    if not ini.is_file():
        raise errors.InvalidInput(
            f"Alembic config {str(ini)!r} not found (working directory {os.getcwd()!r}); pass --config PATH"
        )
    config = Config(str(ini))
    if not config.get_main_option("script_location") and (ini.parent / "env.py").is_file():
        # Flask-Migrate's layout: alembic.ini inside the scripts folder, script_location set only at run time
        config.set_main_option("script_location", str(ini.parent.resolve()).replace("%", "%%"))
    if not config.get_main_option("script_location"):
        raise errors.InvalidInput(f"Alembic config {str(ini)!r} has no script_location in its [alembic] section")
    config.attributes["configure_logger"] = False
    return config


def load_scripts(config: Config) -> ScriptDirectory:
    """The script directory; RevisionError when the revision files do not form a valid graph."""
    try:
        script = ScriptDirectory.from_config(config)
        _ = script.revision_map.heads  # force loading every revision file now
    except CommandError as exc:
        raise errors.RevisionError(f"cannot load the Alembic scripts: {text.first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - a revision file that fails on import (SyntaxError, NameError...)
        raise errors.RevisionError(
            f"a revision file does not import: {type(exc).__name__}: {text.first_line(exc)}"
        ) from None
    return script


def version_table(config: Config) -> tuple[str, str | None]:
    """(table, schema) of the version table, from the same options the env.py template reads."""
    table = config.get_main_option("version_table") or DEFAULT_VERSION_TABLE
    schema = config.get_main_option("version_table_schema") or None
    return table, schema


def heads(script: ScriptDirectory) -> tuple[str, ...]:
    """The script heads, sorted."""
    return tuple(sorted(script.get_heads()))


def single_head(script: ScriptDirectory, hint: str = "merge them (alembic merge heads)") -> str:
    """The one head; RevisionError naming them all when the scripts have several (an unmerged branch)."""
    found = heads(script)
    if not found:
        raise errors.RevisionError("the Alembic scripts contain no revisions")
    if len(found) > 1:
        raise errors.RevisionError(f"the scripts have multiple heads ({', '.join(found)}); {hint}")
    return found[0]


def resolve_target(script: ScriptDirectory, target: str) -> tuple[str, ...]:
    """The revision ids ``target`` names (``head``, ``heads``, an id, a unique prefix, ``branch@head``).

    RevisionError when it names nothing the scripts know; ``head`` with several heads is an error too.
    """
    if target == "head":
        return (single_head(script, "merge them (alembic merge heads) or pass --target with one of them"),)
    if target == "heads":
        return heads(script)
    try:
        found = script.get_revisions(target)
    except CommandError as exc:
        raise errors.RevisionError(
            f"unknown target revision {target!r}: {text.first_line(exc)}; "
            f"heads are {', '.join(heads(script)) or '(none)'}"
        ) from None
    ids = tuple(sorted(s.revision for s in found if s is not None))
    if not ids:
        raise errors.RevisionError(f"target {target!r} names no revision (use head or a revision id)")
    return ids


def check_known(script: ScriptDirectory, current: tuple[str, ...]) -> None:
    """RevisionError when the database is at a revision the scripts do not contain.

    That happens when a newer image already migrated the database, or the
    scripts were edited: in both cases nothing may run.
    """
    for rev in current:
        try:
            found = script.get_revision(rev)
        except CommandError:
            found = None
        if found is None or found.revision != rev:
            raise errors.RevisionError(
                f"database is at revision {rev} which this image's scripts do not contain; "
                f"heads are {', '.join(heads(script)) or '(none)'}"
            )


def is_ancestor_or_same(script: ScriptDirectory, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is ``descendant`` or lies below it."""
    if ancestor == descendant:
        return True
    return any(s.revision == ancestor for s in script.iterate_revisions(descendant, "base"))


@dataclass(frozen=True)
class UpgradePath:
    """What an upgrade from ``current`` to ``target`` would do."""

    current: tuple[str, ...]
    target: tuple[str, ...]
    #: Revision ids in the order they would run.
    pending: tuple[str, ...]

    @property
    def from_revision(self) -> str | None:
        return describe(self.current)

    @property
    def to_revision(self) -> str | None:
        return describe(self.target)


def describe(revs: tuple[str, ...] | list[str]) -> str | None:
    """A revision tuple as status shows it: ``None`` for base, ``a,b`` for several."""
    return ",".join(sorted(revs)) or None


def upgrade_path(script: ScriptDirectory, current: tuple[str, ...], target: str) -> UpgradePath:
    """Check ``current`` and ``target`` against the scripts and list the pending revisions.

    RevisionError when the database is at an unknown revision, the target is
    unknown, or the target lies below the database (migrate never downgrades).
    """
    check_known(script, current)
    target_ids = resolve_target(script, target)
    for tid in target_ids:
        # a target that is an ancestor of where we are: nothing to do only if we are exactly there
        for cur in current:
            if cur != tid and is_ancestor_or_same(script, tid, cur):
                raise errors.RevisionError(
                    f"target {tid} is below the database's revision {cur}; migrate only upgrades"
                )
    try:
        # Everything below the targets that is not below (or at) where the database is: with branches,
        # a target on another branch than the database's revision is still reachable (Alembic upgrades it).
        steps = list(script.iterate_revisions(target_ids, "base"))
        done = {s.revision for s in script.iterate_revisions(current, "base")} if current else set()
    except CommandError as exc:
        raise errors.RevisionError(
            f"cannot upgrade from {describe(current) or 'base'} to {target}: {text.first_line(exc)}"
        ) from None
    pending = tuple(s.revision for s in reversed(steps) if s.revision not in done)
    return UpgradePath(current=current, target=target_ids, pending=pending)


def between(script: ScriptDirectory, before: tuple[str, ...], after: tuple[str, ...]) -> list[str]:
    """Revisions applied to move the database from ``before`` to ``after`` (in order); [] when unknown."""
    if not after or set(before) == set(after):
        return []
    try:
        steps = list(script.iterate_revisions(after, before if before else "base"))
    except CommandError:
        return []
    return [s.revision for s in reversed(steps) if s.revision not in before]


async def read_database_heads(
    conn: Any, *, table: str = DEFAULT_VERSION_TABLE, schema: str | None = None
) -> tuple[str, ...] | None:
    """The revisions in the version table (sorted); ``None`` when the table does not exist yet.

    ``conn`` is an asyncpg connection. The table is looked up with ``to_regclass``
    (which follows search_path when no schema is given, as Alembic does).
    """
    name = _quote(table) if schema is None else f"{_quote(schema)}.{_quote(table)}"
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
    if not exists:
        return None
    rows = await conn.fetch(f"SELECT version_num FROM {name}")
    return tuple(sorted(str(r[0]) for r in rows))


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'
