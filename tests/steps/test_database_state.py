"""Database-level state (issue 13, finding 2): what pg_dump without --create leaves out comes back too.

A migration that changes ``search_path`` with ALTER DATABASE SET, adds a default privilege and a
publication, rewrites the database's comment, ACL and a role's settings in it, is rolled back by
the restore: the database-level state read after equals the one the backup recorded. A
publication that existed at backup time no longer breaks the restore or ``--verify restore``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import database_state

from . import SAMPLE_SQL, checksums, location_for, make_sample, read_json, run_step, step_env

pytestmark = pytest.mark.testbed


def level_state(database: Any) -> dict[str, Any]:
    """The database-level state as the product reads it (one JSON object)."""
    return dict(json.loads(database.scalar(database_state.READ_SQL)))


def _prepare(database: Any) -> str:
    reader = f"reader_{database.name}"
    database.server.execute(f'DROP ROLE IF EXISTS "{reader}"; CREATE ROLE "{reader}"')
    make_sample(database)
    database.execute(
        f"COMMENT ON DATABASE \"{database.name}\" IS 'the shop';"
        f'GRANT CONNECT ON DATABASE "{database.name}" TO "{reader}";'
        f'ALTER ROLE "{reader}" IN DATABASE "{database.name}" SET work_mem = \'8MB\';'
        f"ALTER DATABASE \"{database.name}\" SET statement_timeout = '30s';"
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT SELECT ON TABLES TO "{reader}";'
        "CREATE PUBLICATION shop_changes FOR TABLE project, audit.comment;"
    )
    return reader


def _migrate(database: Any, reader: str) -> None:
    """What a migration may change at the database level (none of it is in a plain pg_dump)."""
    database.execute(
        f'ALTER DATABASE "{database.name}" SET search_path = audit, "$user";'
        f'ALTER DATABASE "{database.name}" RESET statement_timeout;'
        f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{reader}";'
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA audit REVOKE SELECT ON TABLES FROM "{reader}";'
        "CREATE PUBLICATION everything_new FOR TABLE task;"
        "ALTER PUBLICATION shop_changes DROP TABLE project;"
        f"COMMENT ON DATABASE \"{database.name}\" IS 'changed';"
        f'REVOKE CONNECT ON DATABASE "{database.name}" FROM "{reader}";'
        f'GRANT CREATE ON DATABASE "{database.name}" TO "{reader}";'
        f'ALTER ROLE "{reader}" IN DATABASE "{database.name}" SET work_mem = \'64MB\';'
        "DELETE FROM audit.comment WHERE id % 3 = 0"
    )


def test_a_restore_puts_database_level_state_back(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    reader = _prepare(database)
    before, rows = level_state(database), checksums(database)
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(
        ["backup", "--location", location_for(bucket), "--verify", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == 0, stderr
    stored = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert stored["databaseState"]["settings"] == ["statement_timeout=30s"]
    assert stored["verification"]["ok"] is True  # the replay into a scratch database passes with a publication
    _migrate(database, reader)
    assert level_state(database) != before

    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == 0, stderr
    assert result is not None and result["ok"] is True
    assert level_state(database) == before
    assert checksums(database) == rows
    assert database.scalar("SHOW search_path") == '"$user", public'  # a new session gets the old search_path


def test_a_restore_refuses_before_touching_what_it_cannot_put_back(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The restoring role (owner, not superuser) may not reset another role's settings: refused, named."""
    owner = f"owner_{database.name}"
    database.server.execute(f'DROP ROLE IF EXISTS "{owner}"; CREATE ROLE "{owner}" LOGIN PASSWORD \'pw\'')
    database.server.execute(f'ALTER DATABASE "{database.name}" OWNER TO "{owner}"')
    database.execute(f'ALTER SCHEMA public OWNER TO "{owner}"')
    database.server.psql(SAMPLE_SQL, database.name, user=owner, password="pw")
    env = step_env(database_url=database.url_for(owner, "pw"), s3=s3)
    code, _, _, stderr = run_step(["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    database.execute(f'ALTER ROLE "{database.server.superuser}" IN DATABASE "{database.name}" SET work_mem = \'64MB\'')
    before, rows = level_state(database), checksums(database)

    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == errors.RestoreFailed.exit_code, stderr
    assert result is not None and result["changedDatabase"] is False
    assert "refused before touching the database" in result["message"]
    assert "permission denied" in result["message"] or "must be" in result["message"], result["message"]
    assert level_state(database) == before and checksums(database) == rows
