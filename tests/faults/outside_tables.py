"""What :mod:`tests.e2e.dbstate` does not see, read from the catalogs: large objects, table grants and
the database-level state ``pg_dump`` without ``--create`` leaves out.

``dbstate.capture`` compares ``pg_dump --schema-only --no-owner --no-privileges`` and every
table's ordered rows: large objects (not tables), grants (``--no-privileges``), the
database's and the role's settings in it, the database's ACL and comment are outside it.
The restore-integrity fault rows (issue 13) compare these too. Read as the superuser the
test bed connects as; must not change anything.
"""

from __future__ import annotations

from typing import Any

#: One catalog query per kind of state; each returns rows in a fixed order.
QUERIES = {
    "large objects": ("SELECT m.oid::text, md5(lo_get(m.oid)) FROM pg_largeobject_metadata m ORDER BY m.oid"),
    "table grants": (
        "SELECT c.oid::regclass::text, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relacl IS NOT NULL AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1"
    ),
    "settings": (
        "SELECT coalesce(r.rolname, '(every role)'), array_to_string(s.setconfig, ', ') FROM pg_db_role_setting s "
        "LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1"
    ),
    "database acl and comment": (
        # The privileges in effect: NULL means the default ACL, which an explicit equal one grants alike.
        "SELECT array(SELECT unnest(coalesce(datacl, acldefault('d', datdba)))::text ORDER BY 1)::text, "
        "coalesce(shobj_description(oid, 'pg_database'), '(none)') FROM pg_database WHERE datname = current_database()"
    ),
    "default privileges": (
        "SELECT pg_get_userbyid(defaclrole), coalesce(defaclnamespace::regnamespace::text, '(all)'), "
        "defaclobjtype::text, defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3"
    ),
    "publications": (
        "SELECT p.pubname, coalesce(string_agg(t.schemaname || '.' || t.tablename, ', ' "
        "ORDER BY t.schemaname, t.tablename), '') FROM pg_publication p "
        "LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname GROUP BY p.pubname ORDER BY 1"
    ),
}


def capture(database: Any) -> dict[str, list[tuple[str, ...]]]:
    """Every kind of state in :data:`QUERIES`, as rows of text."""
    return {what: database.query(sql) for what, sql in QUERIES.items()}


def add_large_objects(database: Any, count: int) -> None:
    """``count`` large objects of a few KiB each (binary content), as an application storing files would."""
    database.execute(
        f"SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 200 + g), 'hex')) FROM generate_series(1, {int(count)}) g"
    )
