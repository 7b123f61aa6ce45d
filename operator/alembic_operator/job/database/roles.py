"""Roles a migration created, dropped or altered: reported by the restore, never undone (issue 13).

Roles are global objects, outside any database's dump: a restore cannot put
them back and must not guess. So the backup records each role's fingerprint
(:data:`READ_SQL`: attributes, per-role settings and memberships, not the
password, which only a superuser may read) in the manifest's ``roles``, and
the restore's result names the roles created, dropped or altered since
(:func:`changes`), saying they were left as they are.

Must not: change anything.
"""

from __future__ import annotations

import json
from typing import Any

from alembic_operator.job.database import postgres

#: ``{role: md5 of its attributes, settings and memberships}`` for every role but PostgreSQL's own.
READ_SQL = """
SELECT coalesce(pg_catalog.jsonb_object_agg(r.rolname, pg_catalog.md5(pg_catalog.jsonb_build_array(
         r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication,
         r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, r.rolconfig,
         (SELECT coalesce(pg_catalog.jsonb_agg(g.rolname ORDER BY g.rolname), '[]')
          FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
          WHERE m.member = r.oid))::text)), '{}')
FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_'
"""


def read(conn: postgres.Connection) -> dict[str, str]:
    """The manifest's ``roles``."""
    value = conn.fetchval(READ_SQL)
    loaded = json.loads(str(value)) if value is not None else {}
    return {str(k): str(v) for k, v in loaded.items()}


def changes(*, recorded: dict[str, Any] | None, current: dict[str, str]) -> dict[str, list[str]]:
    """``{"created": [...], "dropped": [...], "altered": [...]}`` since the backup (empty lists: none)."""
    if not isinstance(recorded, dict):
        return {"created": [], "dropped": [], "altered": []}
    return {
        "created": sorted(set(current) - set(recorded)),
        "dropped": sorted(set(recorded) - set(current)),
        "altered": sorted(r for r in set(current) & set(recorded) if current[r] != recorded[r]),
    }


def describe(found: dict[str, list[str]]) -> str:
    """``"roles are outside the dump and were left as they are: created a; altered b"`` or ``""``."""
    parts = [
        f"{kind} {', '.join(names[:5])}" + (" …" if len(names) > 5 else "") for kind, names in found.items() if names
    ]
    return "; roles are outside the dump and were left as they are: " + "; ".join(parts) if parts else ""
