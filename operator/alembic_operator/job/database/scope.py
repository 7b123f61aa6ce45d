"""Which schemas are the application's: what a backup holds and a restore may drop (issue 13, finding 7).

A database may hold more than one application. A run learns which schemas
are its own from the backup step's ``--schema NAME`` (repeatable; the spec's
``backup.schemas``): the dump then holds only those schemas and the
extensions living in them (``pg_dump --schema/--extension``), and the
manifest records them as ``scope`` with every schema present at backup time
(``schemas``). Without ``--schema`` the scope is the whole database (the
default, as before).

A restore of a scoped backup drops and recreates only the scope's schemas
plus the schemas created since the backup (present now, absent from the
manifest's ``schemas``: the migration's). Everything else — another
application's schemas, large objects, publications, event triggers and
default privileges outside the scope — stays as it is; the database's own
settings, ACL and comment are still put back.

Must not: change anything (pure helpers and one read-only query).
"""

from __future__ import annotations

from typing import Any

from alembic_operator.job.database import identifiers, postgres

SCHEMAS_SQL = f"SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {postgres.SYSTEM_SCHEMAS_SQL} ORDER BY 1"

EXTENSIONS_SQL = """SELECT e.extname FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = ANY($1::text[]) ORDER BY 1"""


#: The restore transaction's helper (:mod:`alembic_operator.job.database.loading`): drop the scope's
#: schemas and those absent from ``recorded`` (created since the backup); names arrive as jsonb.
HELPERS_SQL = r"""
CREATE FUNCTION pg_temp.alembic_operator_drop_scope(scope jsonb) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE s name;
BEGIN
  FOR s IN SELECT n.nspname FROM pg_catalog.pg_namespace n
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
             AND (n.nspname IN (SELECT pg_catalog.jsonb_array_elements_text(scope->'scope'))
                  OR n.nspname NOT IN (SELECT pg_catalog.jsonb_array_elements_text(scope->'recorded')))
           ORDER BY 1 LOOP
    EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $f$;
"""


def schemas(conn: postgres.Connection) -> list[str]:
    """Every schema of the database that is not PostgreSQL's own."""
    return [str(r["nspname"]) for r in conn.fetch(SCHEMAS_SQL)]


def extensions(conn: postgres.Connection, *, scope: list[str]) -> list[str]:
    """The extensions whose objects live in the ``scope`` schemas (the dump must hold them too)."""
    return [str(r["extname"]) for r in conn.fetch(EXTENSIONS_SQL, scope)]


def pattern(name: str) -> str:
    """An exact name as a pg_dump pattern: inside double quotes no character is special."""
    return '"' + name.replace('"', '""') + '"'


def dump_args(*, scope: list[str], extensions: list[str]) -> list[str]:
    """pg_dump arguments limiting the dump to ``scope`` (none: the whole database)."""
    if not scope:
        return []
    return [f"--schema={pattern(s)}" for s in scope] + [f"--extension={pattern(e)}" for e in extensions]


def of(doc: dict[str, Any]) -> list[str] | None:
    """The manifest's scope (None: the whole database, also for manifests older than scopes)."""
    value = doc.get("scope")
    return [str(s) for s in value] if isinstance(value, list) and value else None


def to_drop(*, doc: dict[str, Any], current: list[str]) -> list[str] | None:
    """The schemas a restore drops: the scope's and those created since the backup (None: every one)."""
    scoped = of(doc)
    if scoped is None:
        return None
    recorded = {str(s) for s in doc.get("schemas") or []}
    return sorted(set(scoped) | {s for s in current if s not in recorded})


def holds(label: str, schemas_: list[str] | None) -> bool:
    """Whether table ``label`` (schema.table) is inside ``schemas_`` (None: everything is)."""
    return schemas_ is None or identifiers.parse(label)[0] in schemas_
