"""Which roles own the application's objects, and whether the restoring role may act as each of them.

A restore replays ``ALTER … OWNER TO role`` for every object the dump holds and
drops every application schema and large object first. A role that is not a
superuser may only give an object to a role it can SET ROLE to (PostgreSQL 16+;
15: be a member of), and may only drop schemas and large objects whose owner's
privileges it has. Run as the application's role (production: owner of its
objects, not a superuser), an object owned by a role it is not a member of
would fail the restore part-way (rolled back, but after the database was
locked and the foreign writes counted). So:

1. at backup time :func:`read` records, in the dump's snapshot, each owning
   role with how many objects it owns and the first few of them named
   (manifest ``owners``);
2. before a full restore, :func:`refusals` names each recorded owner the
   connected role cannot become (or that no longer exists), and each current
   schema or large object it could not drop — nothing is touched.

Objects belonging to an extension are the extension's (pg_dump does not dump them).
Must not: change anything.
"""

from __future__ import annotations

from typing import Any

from alembic_operator.job.database import postgres

#: How many objects of each owner the manifest names (the count covers the rest).
NAMED = 3

_NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = o.classid
                                     AND d.objid = o.objid AND d.deptype = 'e')"""

#: An object named whatever search_path is (``table shop.report``, ``schema "we.ird"``).
_WHAT = "(SELECT i.type || ' ' || i.identity FROM pg_catalog.pg_identify_object(o.classid, o.objid, 0) i)"

#: Owned objects of the application: (classid, objid, owner, schema) rows over the catalogs pg_dump gives
#: owners to; large objects and publications have no schema (NULL), an extension its objects' schema.
_OBJECTS = f"""
SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, n.oid AS objid, n.nspowner AS owner, n.nspname
FROM pg_catalog.pg_namespace n WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relowner, n.nspname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind NOT IN ('i', 'I', 't', 'c') AND {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.proowner, n.nspname
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, t.typowner, n.nspname
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typrelid = 0 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  AND {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid, c.collowner, n.nspname
FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, p.oid, p.oprowner, n.nspname
FROM pg_catalog.pg_operator p JOIN pg_catalog.pg_namespace n ON n.oid = p.oprnamespace
WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, c.oid, c.cfgowner, n.nspname
FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, c.oid, c.dictowner, n.nspname
FROM pg_catalog.pg_ts_dict c JOIN pg_catalog.pg_namespace n ON n.oid = c.dictnamespace
WHERE {postgres.SYSTEM_SCHEMAS_SQL}
UNION ALL SELECT 'pg_catalog.pg_largeobject'::pg_catalog.regclass, l.oid, l.lomowner, NULL
FROM pg_catalog.pg_largeobject_metadata l
UNION ALL SELECT 'pg_catalog.pg_publication'::pg_catalog.regclass, p.oid, p.pubowner, NULL
FROM pg_catalog.pg_publication p
UNION ALL SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, e.extowner, n.nspname
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'
"""

#: ``owner, objects, named[]`` per owning role (``named``: the first :data:`NAMED` objects described).
READ_SQL = f"""
SELECT pg_catalog.pg_get_userbyid(x.owner) AS owner, count(*) AS objects,
       (pg_catalog.array_agg(x.what ORDER BY x.what))[1:{NAMED}] AS named
FROM (SELECT o.owner, {_WHAT} AS what
      FROM ({_OBJECTS}) o WHERE {_NOT_EXTENSION} AND ($1::text[] IS NULL OR o.nspname = ANY($1::text[]))) x
GROUP BY x.owner ORDER BY 1
"""

#: Current schemas and large objects a full restore drops, whose owner's privileges the role lacks.
UNDROPPABLE_SQL = f"""
SELECT {_WHAT} AS what, pg_catalog.pg_get_userbyid(o.owner) AS owner
FROM ({_OBJECTS}) o
WHERE o.classid IN ('pg_catalog.pg_namespace'::pg_catalog.regclass, 'pg_catalog.pg_largeobject'::pg_catalog.regclass)
  AND {_NOT_EXTENSION} AND NOT pg_catalog.pg_has_role(o.owner, 'USAGE')
  AND ($1::text[] IS NULL OR o.nspname = ANY($1::text[]))
ORDER BY 1
"""


def read(conn: postgres.Connection, *, schemas: list[str] | None = None) -> list[dict[str, Any]]:
    """``[{"role", "objects", "named"}]``: each role owning application objects (the manifest's ``owners``);
    with ``schemas`` (a backup's scope) only objects in them, extensions living there included."""
    return [
        {"role": str(r["owner"]), "objects": int(r["objects"]), "named": [str(w) for w in r["named"]]}
        for r in conn.fetch(READ_SQL, schemas)
    ]


def _can_become(conn: postgres.Connection, role: str) -> bool | None:
    """Whether the connected role may give an object to ``role`` (None: no such role)."""
    mode = "SET" if postgres.server_version_num(conn) >= 160000 else "MEMBER"
    value = conn.fetchval(
        "SELECT pg_catalog.pg_has_role(r.oid, $2) FROM pg_catalog.pg_roles r WHERE r.rolname = $1", role, mode
    )
    return None if value is None else bool(value)


def refusals(
    conn: postgres.Connection, *, recorded: list[dict[str, Any]] | None, dropping: list[str] | None = None
) -> list[str]:
    """What stops the connected role from a full restore for ownership reasons (empty: nothing);
    ``dropping``: the schemas a scoped restore drops (None: every schema and large object)."""
    if conn.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"):
        return []
    found: list[str] = []
    for entry in recorded or []:
        can = _can_become(conn, str(entry["role"]))
        if can:
            continue
        objects = ", ".join(entry.get("named") or [])
        more = int(entry.get("objects") or 0) - len(entry.get("named") or [])
        if more > 0:
            objects += f" and {more} more"
        why = "no longer exists" if can is None else "is not a role the restoring role may act as (SET ROLE)"
        found.append(f"objects owned by role {entry['role']} ({objects}): that role {why}")
    found += [
        f"{r['what']} owned by {r['owner']} (only its owner may drop it)" for r in conn.fetch(UNDROPPABLE_SQL, dropping)
    ]
    return found
