"""Database-level state: what ``pg_dump`` without ``--create`` leaves out, recorded and put back.

pg_dump's documentation: only with ``--create`` does a dump carry the
database's comment, its ACL, its security labels and the configuration
settings specific to it (``ALTER DATABASE … SET`` and ``ALTER ROLE … IN
DATABASE … SET``); the database's own properties (owner, encoding, locale,
connection limit) are never in it. Other objects live outside every schema, so
the restore's ``DROP SCHEMA … CASCADE`` leaves them while the dump recreates
them ("already exists"): publications, event triggers, subscriptions,
database-wide default privileges (``ALTER DEFAULT PRIVILEGES`` without ``IN
SCHEMA``), and languages, foreign-data wrappers, casts, access methods and
transforms not made by an extension.

1. :data:`READ_SQL`, one query yielding one JSON object, is read at backup
   time into the manifest (``databaseState``) and read again to compare.
2. :func:`refusals` (pure) names what a restore cannot put back in one
   transaction: subscriptions (``DROP SUBSCRIPTION`` of one with a slot cannot
   run in a transaction block), survivors of the kinds above, and objects only
   a superuser may create when the restoring role is not one.
3. In the restore's transaction (:data:`HELPERS_SQL`): ``clear()`` before the
   schemas are dropped — event triggers (they would fire on the restore's own
   DDL) and publications dropped, database-wide default privileges reset to
   the built-in ones — so the dump's script recreates the backup's;
   ``apply(state)`` after the script puts settings, role settings, ACL and
   comment back where they differ; ``check(expected)`` raises, naming every
   key that still differs, so the transaction never commits a database whose
   level state is not the backup's.
4. :func:`rehearse` runs clear + apply + check of the settings keys in a
   transaction it rolls back: the restore refuses before touching anything
   when a statement it will need is not permitted, naming it.

Names reach SQL only as jsonb arguments quoted on the server (``format('%I')``).
Must not: decide whether to restore (the restore step does).
"""

from __future__ import annotations

import json
from typing import Any

from alembic_operator.api import errors
from alembic_operator.job.database import identifiers, postgres

#: Keys that describe the database itself (not the dump): the restore puts them back with apply().
SETTINGS_KEYS = ("settings", "roleSettings", "acl", "comment", "owner", "securityLabels")
#: Keys the dump's script restores (after clear()), compared after it.
OBJECT_KEYS = ("defaultPrivileges", "publications", "eventTriggers", "subscriptions")
#: What a replay into a scratch database (``backup --verify restore``) can compare: not its owner or ACL.
PORTABLE_KEYS = ("settings", "roleSettings", "comment", "securityLabels", *OBJECT_KEYS)

#: Settings whose value is a list of quoted elements (pg_dump's variable_is_guc_list_quote).
LIST_QUOTE_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "oauth_validator_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)

_ACL = """(SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(
      pg_catalog.pg_get_userbyid(a.grantor),
      CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
      a.privilege_type, a.is_grantable)
      ORDER BY pg_catalog.pg_get_userbyid(a.grantor), pg_catalog.pg_get_userbyid(a.grantee), a.privilege_type), '[]')
    FROM pg_catalog.aclexplode({acl}) a)"""

#: The database-level state of the current database as one JSON object (see module docstring).
READ_SQL = f"""
SELECT pg_catalog.jsonb_build_object(
  'owner', pg_catalog.pg_get_userbyid(d.datdba),
  'comment', pg_catalog.shobj_description(d.oid, 'pg_database'),
  'acl', {_ACL.format(acl="coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))")},
  'settings', (SELECT coalesce(pg_catalog.to_jsonb(s.setconfig), '[]') FROM pg_catalog.pg_db_role_setting s
               WHERE s.setdatabase = d.oid AND s.setrole = 0),
  'roleSettings', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(r.rolname, s.setconfig)
                                   ORDER BY r.rolname), '[]')
                   FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                   WHERE s.setdatabase = d.oid),
  'securityLabels', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(l.provider, l.label)
                                     ORDER BY l.provider), '[]')
                     FROM pg_catalog.pg_shseclabel l
                     WHERE l.classoid = 'pg_catalog.pg_database'::pg_catalog.regclass AND l.objoid = d.oid),
  'defaultPrivileges', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(
                            pg_catalog.pg_get_userbyid(a.defaclrole), n.nspname, a.defaclobjtype,
                            {_ACL.format(acl="a.defaclacl")})
                            ORDER BY pg_catalog.pg_get_userbyid(a.defaclrole), n.nspname, a.defaclobjtype), '[]')
                        FROM pg_catalog.pg_default_acl a
                        LEFT JOIN pg_catalog.pg_namespace n ON n.oid = a.defaclnamespace),
  'publications', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'name', p.pubname, 'owner', pg_catalog.pg_get_userbyid(p.pubowner),
                       'allTables', p.puballtables,
                       'actions', pg_catalog.jsonb_build_array(p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate),
                       'tables', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(
                                      t.schemaname, t.tablename) ORDER BY t.schemaname, t.tablename), '[]')
                                  FROM pg_catalog.pg_publication_tables t WHERE t.pubname = p.pubname))
                       ORDER BY p.pubname), '[]')
                   FROM pg_catalog.pg_publication p),
  'eventTriggers', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(
                        e.evtname, e.evtevent, e.evtenabled, e.evtfoid::pg_catalog.regprocedure::text)
                        ORDER BY e.evtname), '[]')
                    FROM pg_catalog.pg_event_trigger e),
  'subscriptions', (SELECT coalesce(pg_catalog.jsonb_agg(s.subname ORDER BY s.subname), '[]')
                    FROM pg_catalog.pg_subscription s WHERE s.subdbid = d.oid),
  'survivors', (SELECT coalesce(pg_catalog.jsonb_agg(x.what ORDER BY x.what), '[]') FROM (
      SELECT pg_catalog.pg_describe_object(o.classid, o.objid, 0) AS what
      FROM (SELECT 'pg_catalog.pg_language'::pg_catalog.regclass AS classid, oid AS objid FROM pg_catalog.pg_language
            UNION ALL SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, oid
                      FROM pg_catalog.pg_foreign_data_wrapper
            UNION ALL SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, oid FROM pg_catalog.pg_am
            UNION ALL SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, oid FROM pg_catalog.pg_transform
            UNION ALL SELECT 'pg_catalog.pg_cast'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_cast c
                      LEFT JOIN pg_catalog.pg_proc f ON f.oid = c.castfunc
                      WHERE f.oid IS NULL OR f.pronamespace = 'pg_catalog'::pg_catalog.regnamespace) o
      WHERE o.objid >= 16384
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.classid = o.classid AND x.objid = o.objid
                        AND x.deptype = 'e')) x))
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
"""

#: Functions the restore's transaction (and the rehearsal) create in pg_temp; fixed text, names as jsonb.
HELPERS_SQL = """
CREATE FUNCTION pg_temp.alembic_operator_state() RETURNS jsonb LANGUAGE sql AS $f$ __READ__ $f$;
CREATE FUNCTION pg_temp.alembic_operator_clear_database_objects() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE r record; a record; kind text;
BEGIN
  FOR r IN SELECT evtname FROM pg_catalog.pg_event_trigger LOOP
    EXECUTE pg_catalog.format('DROP EVENT TRIGGER %I', r.evtname);
  END LOOP;
  FOR r IN SELECT pubname FROM pg_catalog.pg_publication LOOP
    EXECUTE pg_catalog.format('DROP PUBLICATION %I', r.pubname);
  END LOOP;
  FOR r IN SELECT pg_catalog.pg_get_userbyid(defaclrole) AS role, defaclobjtype AS t, defaclacl
           FROM pg_catalog.pg_default_acl WHERE defaclnamespace = 0 LOOP
    kind := CASE r.t WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                     WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' WHEN 'L' THEN 'LARGE OBJECTS' END;
    FOR a IN SELECT DISTINCT grantee FROM pg_catalog.aclexplode(r.defaclacl) LOOP
      EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE ALL ON %s FROM %s', r.role, kind,
        CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END);
    END LOOP;
    -- acldefault's code for sequences is 's' ('S' there is a foreign server: USAGE only, no UPDATE)
    FOR a IN SELECT grantee, privilege_type FROM pg_catalog.aclexplode(pg_catalog.acldefault(
               CASE r.t WHEN 'S' THEN 's' ELSE r.t END, (
               SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r.role))) LOOP
      EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT %s ON %s TO %s', r.role,
        a.privilege_type, kind,
        CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END);
    END LOOP;
  END LOOP;
END $f$;
CREATE FUNCTION pg_temp.alembic_operator_settings_sql(target text, config jsonb) RETURNS SETOF text
LANGUAGE sql AS $f$
  SELECT pg_catalog.format('%s SET %I TO %s', target, item->>0,
         (SELECT pg_catalog.string_agg(pg_catalog.format('%L', v), ', ')
          FROM pg_catalog.jsonb_array_elements_text(item->1) v))
  FROM pg_catalog.jsonb_array_elements(config) item
$f$;
CREATE FUNCTION pg_temp.alembic_operator_apply_database_state(want jsonb) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE db text := pg_catalog.current_database(); now jsonb := pg_temp.alembic_operator_state();
  item jsonb; stmt text; r record;
BEGIN
  IF want ? 'settings' AND (now->'settings') IS DISTINCT FROM (want->'recorded'->'settings') THEN
    EXECUTE pg_catalog.format('ALTER DATABASE %I RESET ALL', db);
    FOR stmt IN SELECT pg_temp.alembic_operator_settings_sql(pg_catalog.format('ALTER DATABASE %I', db),
                                                             want->'settings') LOOP
      EXECUTE stmt;
    END LOOP;
  END IF;
  IF want ? 'roleSettings' AND (now->'roleSettings') IS DISTINCT FROM (want->'recorded'->'roleSettings') THEN
    FOR r IN SELECT x->>0 AS role FROM pg_catalog.jsonb_array_elements(now->'roleSettings') x
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(want->'recorded'->'roleSettings') y
                               WHERE y = x) LOOP
      EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', r.role, db);
    END LOOP;
    FOR item IN SELECT x FROM pg_catalog.jsonb_array_elements(want->'roleSettings') x
                WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(now->'roleSettings') y
                                  WHERE y = pg_catalog.jsonb_build_array(x->0, x->2)) LOOP
      EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', item->>0, db);
      FOR stmt IN SELECT pg_temp.alembic_operator_settings_sql(
                    pg_catalog.format('ALTER ROLE %I IN DATABASE %I', item->>0, db), item->1) LOOP
        EXECUTE stmt;
      END LOOP;
    END LOOP;
  END IF;
  IF want ? 'acl' AND (now->'acl') IS DISTINCT FROM (want->'acl') THEN
    FOR r IN SELECT DISTINCT x->>1 AS grantee FROM pg_catalog.jsonb_array_elements(now->'acl') x LOOP
      EXECUTE pg_catalog.format('REVOKE ALL ON DATABASE %I FROM %s CASCADE', db,
        coalesce(pg_catalog.quote_ident(r.grantee), 'PUBLIC'));
    END LOOP;
    FOR item IN SELECT x FROM pg_catalog.jsonb_array_elements(want->'acl') x LOOP
      EXECUTE pg_catalog.format('GRANT %s ON DATABASE %I TO %s%s', item->>2, db,
        coalesce(pg_catalog.quote_ident(item->>1), 'PUBLIC'),
        CASE WHEN (item->>3)::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END IF;
  IF want ? 'comment' AND (now->'comment') IS DISTINCT FROM (want->'comment') THEN
    EXECUTE pg_catalog.format('COMMENT ON DATABASE %I IS %L', db, want->>'comment');
  END IF;
END $f$;
CREATE FUNCTION pg_temp.alembic_operator_check_database_state(expected jsonb) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE now jsonb := pg_temp.alembic_operator_state(); differ text;
BEGIN
  SELECT pg_catalog.string_agg(e.key, ', ' ORDER BY e.key) INTO differ
  FROM pg_catalog.jsonb_each(expected) e WHERE e.value IS DISTINCT FROM now->e.key;
  IF differ IS NOT NULL THEN
    RAISE EXCEPTION 'database-level state differs from the backup''s after the restore: %', differ;
  END IF;
END $f$;
""".replace("__READ__", READ_SQL)


def split_list(value: str) -> list[str]:
    """A list-quoted setting's elements (``"$user", public`` → ``["$user", "public"]``), as SplitGUCList does."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if i < n and value[i] == '"':
            j, part = i + 1, []
            while j < n:
                if value[j] == '"':
                    if j + 1 < n and value[j + 1] == '"':
                        part.append('"')
                        j += 2
                        continue
                    break
                part.append(value[j])
                j += 1
            out.append("".join(part))
            i = j + 1
        else:
            j = value.find(",", i)
            j = n if j < 0 else j
            out.append(value[i:j].strip())
            i = j
        while i < n and value[i] != ",":
            i += 1
        i += 1
    return out


def _config(entries: list[str]) -> list[list[Any]]:
    """``["search_path=\\"$user\\", app"]`` → ``[["search_path", ["$user", "app"]]]`` (what apply() takes)."""
    pairs: list[list[Any]] = []
    for entry in entries:
        name, _, value = entry.partition("=")
        pairs.append([name, split_list(value) if name.lower() in LIST_QUOTE_SETTINGS else [value]])
    return pairs


def apply_payload(recorded: dict[str, Any], *, keys: tuple[str, ...] = SETTINGS_KEYS) -> str:
    """The jsonb argument of apply(): the recorded values of ``keys``, settings split for ALTER … SET."""
    want: dict[str, Any] = {"recorded": {k: recorded.get(k) for k in ("settings", "roleSettings")}}
    if "settings" in keys:
        want["settings"] = _config(list(recorded.get("settings") or []))
    if "roleSettings" in keys:
        want["roleSettings"] = [
            [role, _config(list(config or [])), config] for role, config in recorded.get("roleSettings") or []
        ]
    for key in ("acl", "comment"):
        if key in keys:
            want[key] = recorded.get(key)
    return identifiers.payload(want)


def check_payload(recorded: dict[str, Any], *, keys: tuple[str, ...]) -> str:
    """The jsonb argument of check(): the recorded values of those ``keys`` the manifest holds."""
    return identifiers.payload({k: recorded[k] for k in keys if k in recorded})


def restore_sql(recorded: dict[str, Any] | None, *, keys: tuple[str, ...]) -> str:
    """Statements for after the dump's script: apply the settings keys, then check ``keys``."""
    if not recorded:
        return ""
    return (
        f"SELECT pg_temp.alembic_operator_apply_database_state({apply_payload(recorded, keys=keys)});\n"
        f"SELECT pg_temp.alembic_operator_check_database_state({check_payload(recorded, keys=keys)});\n"
    )


def refusals(*, recorded: dict[str, Any] | None, current: dict[str, Any], superuser: bool) -> list[str]:
    """What a restore cannot put back atomically (empty: it can); each item names the object."""
    found: list[str] = []
    for name in sorted(set(current.get("subscriptions") or []) | set((recorded or {}).get("subscriptions") or [])):
        found.append(f"subscription {name} (DROP SUBSCRIPTION cannot run inside the restore's transaction)")
    for what in current.get("survivors") or []:
        found.append(f"{what} (outside every schema and not an extension's: the dump would recreate it)")
    if not superuser:
        for trigger in sorted({t[0] for t in (current.get("eventTriggers") or [])}):
            found.append(f"event trigger {trigger} (only a superuser may drop or recreate it)")
        for pub in (recorded or {}).get("publications") or []:
            if pub.get("allTables"):
                found.append(f"publication {pub['name']} FOR ALL TABLES (only a superuser may create it)")
    return found


def differences(recorded: dict[str, Any], current: dict[str, Any], *, keys: tuple[str, ...]) -> list[str]:
    """The keys (of ``keys`` the manifest holds) whose values differ."""
    return [k for k in keys if k in recorded and recorded[k] != current.get(k)]


def read(conn: postgres.Connection) -> dict[str, Any]:
    """The current database's level state (:data:`READ_SQL`)."""
    value = json.loads(str(conn.fetchval(READ_SQL)))
    return value if isinstance(value, dict) else {}


def preflight(conn: postgres.Connection, *, recorded: dict[str, Any] | None, scoped: bool = False) -> list[str]:
    """What stops a full restore from putting the database level back (empty: nothing), changing nothing.

    :func:`refusals`, then a rehearsal: clear(), apply() and check() of the settings keys in a
    transaction rolled back, so a statement the restoring role may not run is named now. A
    ``scoped`` restore (:mod:`alembic_operator.job.database.scope`) leaves the objects outside
    schemas alone: only the settings keys are rehearsed.
    """
    superuser = bool(conn.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"))
    found = [] if scoped else refusals(recorded=recorded, current=read(conn), superuser=superuser)
    if found or not recorded:
        return found
    conn.execute("BEGIN")
    try:
        conn.execute("SET LOCAL lock_timeout = '10s'")
        conn.execute(HELPERS_SQL)
        if not scoped:
            conn.execute("SELECT pg_temp.alembic_operator_clear_database_objects()")
        conn.execute(restore_sql(recorded, keys=SETTINGS_KEYS))
    except errors.StepError as exc:
        found.append(exc.message.split(": ", 1)[-1])
    finally:
        conn.execute("ROLLBACK")
    return found
