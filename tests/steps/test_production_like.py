"""A production-like database comes back exactly (issue 13, done-when line 1), restored AS THE APP ROLE.

The fixture (``fixtures/production_like/schema.sql``) is created by the application's role, owner
of the database and of its objects but not a superuser: extensions that ship with PostgreSQL,
enums, domains, views, a materialized view, partitions, inheritance, generated and identity
columns, large objects, triggers, RLS policies, comments, grants, several schemas, unusual names,
an unlogged table, objects owned by another role (the app role is a member of it, as on managed
services) and database-level settings, ACL, comment, default privileges and a publication.
It is backed up by the backup step, migrated by the fixture's own Alembic revision run by the
migrate step (it changes every one of those kinds), then restored by the restore step. After it,
``pg_dump`` (schema and data) and the database-level state equal those before the backup, except
sequence values: each is at least the larger of its backup and migrated value, and each one the
migration had moved is listed in the step's ``sequencesKept``.

What the app role cannot restore must be refused before anything is touched, naming it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import database_state

from . import location_for, read_json, run_step, step_env

pytestmark = pytest.mark.testbed

FIXTURE = Path(__file__).parent / "fixtures" / "production_like"
PASSWORD = "app-pw"
_SETVAL = re.compile(r"^SELECT pg_catalog\.setval\('(?P<name>.+)', (?P<value>\d+), (?:true|false)\);$")


@dataclass(frozen=True)
class App:
    """The fixture database and its roles: ``app`` (owner, logs in), ``etl`` (app is a member), ``reader``."""

    database: Any
    app: str
    etl: str
    reader: str

    @property
    def url(self) -> str:
        return str(self.database.url_for(self.app, PASSWORD))


@pytest.fixture
def production_like(database: Any) -> Iterator[App]:
    name = database.name
    app = App(database=database, app=f"{name}_app", etl=f"{name}_etl", reader=f"{name}_reader")
    server = database.server
    server.execute(
        f'CREATE ROLE "{app.app}" LOGIN PASSWORD \'{PASSWORD}\'; CREATE ROLE "{app.etl}"; CREATE ROLE "{app.reader}";'
        f'GRANT "{app.etl}" TO "{app.app}"; ALTER DATABASE "{name}" OWNER TO "{app.app}"'
    )
    try:
        sql = (FIXTURE / "schema.sql").read_text()
        for token, value in (("__DB__", name), ("__APP__", app.app), ("__ETL__", app.etl), ("__READER__", app.reader)):
            sql = sql.replace(token, value)
        server.psql(sql, name, user=app.app, password=PASSWORD)
        yield app
    finally:
        server.drop_database(name)
        for role in (app.app, app.etl, app.reader, f"{name}_new_role"):
            server.drop_role(role)


def dump(database: Any) -> tuple[str, dict[str, int]]:
    """``pg_dump`` (schema and data, as the superuser) without its sequence positions, and those positions."""
    server = database.server
    proc = subprocess.run(
        [str(server.tool("pg_dump")), "--no-sync", "-d", database.name],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines, positions = [], {}
    for line in proc.stdout.splitlines():
        match = _SETVAL.match(line)
        if match:
            positions[match["name"]] = int(match["value"])
        elif not line.startswith(("\\restrict ", "\\unrestrict ")):  # a random key per dump
            lines.append(line)
    return "\n".join(lines), positions


def level_state(database: Any) -> dict[str, Any]:
    return dict(json.loads(database.scalar(database_state.READ_SQL)))


def test_a_production_like_database_is_restored_exactly_by_the_app_role(
    production_like: App, s3: Any, bucket: str, tmp_path: Path
) -> None:
    database = production_like.database
    before, backed_up = dump(database)
    level = level_state(database)
    assert "CREATE EXTENSION IF NOT EXISTS hstore" in before and "424202" in before  # the fixture loaded
    loc = location_for(bucket)
    env = step_env(database_url=production_like.url, s3=s3, location=loc)

    code, backup, _, stderr = run_step(["backup", "--location", loc], env=env, tmp_path=tmp_path)
    assert code == 0 and backup is not None, stderr
    code, migrate, _, stderr = run_step(
        ["migrate", "--config", str(FIXTURE / "alembic.ini")], env=env, tmp_path=tmp_path
    )
    assert code == 0 and migrate is not None, stderr
    assert migrate["data"]["toRevision"] == "0002"
    migrated_dump, migrated = dump(database)
    assert migrated_dump != before and level_state(database) != level
    # roles are global: what a (privileged) migration does to them is reported, not undone
    new_role = f"{database.name}_new_role"
    database.server.execute(f'CREATE ROLE "{new_role}"; ALTER ROLE "{production_like.reader}" CONNECTION LIMIT 5')

    code, result, _, stderr = run_step(
        [
            "restore",
            "--location",
            loc,
            "--backup-uri",
            backup["data"]["uri"],
            "--backup-sha256",
            backup["data"]["sha256"],
            "--on-foreign-writes",
            "restore",
        ],
        env=env,
        tmp_path=tmp_path,
    )
    assert code == 0 and result is not None, stderr
    after, restored = dump(database)
    assert after == before
    assert level_state(database) == level
    assert restored.keys() == backed_up.keys()
    kept = {k["sequence"]: k["value"] for k in result["data"]["sequencesKept"]}
    for name, value in restored.items():
        assert value >= max(backed_up[name], migrated.get(name, 0)), name
        if migrated.get(name, 0) > backed_up[name]:
            assert kept.get(name.replace('"', "")) == value, (name, kept)
    assert {"shop.invoice_no", "shop.customer_id_seq", "shop.event_id_seq"} <= kept.keys()
    assert read_json(s3.client(), bucket, "shop/migrations/run-1/restore.json")["ok"] is True
    changed = result["data"]["rolesChanged"]
    assert new_role in changed["created"] and production_like.reader in changed["altered"], changed
    assert "roles are outside the dump and were left as they are" in result["message"]
    assert (
        database.server.scalar(f"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{production_like.reader}'") == "5"
    )


def test_an_object_the_app_role_cannot_own_is_refused_before_anything_is_touched(
    production_like: App, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """A table owned by a role the app role is not a member of: the restore could not recreate it as such."""
    database = production_like.database
    outsider = f"{database.name}_outsider"
    database.server.execute(f'CREATE ROLE "{outsider}"')
    try:
        database.execute(
            f'CREATE TABLE shop.foreign_owned (id int); ALTER TABLE shop.foreign_owned OWNER TO "{outsider}";'
            f'GRANT SELECT ON shop.foreign_owned TO "{production_like.app}"'  # the app can back it up
        )
        env = step_env(database_url=production_like.url, s3=s3)
        loc = location_for(bucket)
        code, _, _, stderr = run_step(["backup", "--location", loc], env=env, tmp_path=tmp_path)
        assert code == 0, stderr
        before, _ = dump(database)

        code, result, _, stderr = run_step(
            ["restore", "--location", loc, "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
        )
        assert code == errors.RestoreFailed.exit_code, stderr
        assert result is not None and result["changedDatabase"] is False
        assert "refused before touching the database" in result["message"], result["message"]
        assert outsider in result["message"] and "shop.foreign_owned" in result["message"], result["message"]
        assert dump(database)[0] == before
    finally:
        database.execute("DROP TABLE IF EXISTS shop.foreign_owned")
        database.server.drop_role(outsider)
