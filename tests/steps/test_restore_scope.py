"""A restore touches only the application's schemas (issue 13, finding 7: scope).

The backup names the app's schemas (``--schema``, the spec's ``backup.schemas``); another
application's schema in the same database is neither in the dump nor touched by the restore: its
rows written since the backup stay, its writes are not counted as foreign writes to discard. A
schema the migration created (absent at backup time) is dropped with the app's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors

from . import checksums, location_for, make_sample, read_json, run_step, step_env

pytestmark = pytest.mark.testbed

OTHER_APP = """
CREATE SCHEMA billing;
CREATE TABLE billing.invoice (id bigserial PRIMARY KEY, amount numeric NOT NULL);
INSERT INTO billing.invoice (amount) SELECT g FROM generate_series(1, 100) g;
"""


def _only(sums: dict[str, str], schema: str) -> dict[str, str]:
    return {k: v for k, v in sums.items() if k.removeprefix("seq:").startswith(schema + ".")}


def test_a_restore_leaves_another_applications_schema_as_it_is(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    database.execute(OTHER_APP)
    loc = location_for(bucket)
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(
        ["backup", "--location", loc, "--schema", "public", "--schema", "audit"], env=env, tmp_path=tmp_path
    )
    assert code == 0, stderr
    stored = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert stored["scope"] == ["audit", "public"] and "billing" in stored["schemas"]
    assert all(t["name"][0] != "billing" for t in stored["tables"])  # not the app's: not in the backup
    before = checksums(database)

    # the migration: changes the app's schemas and creates one; meanwhile the other app writes
    database.execute(
        "DELETE FROM audit.comment WHERE id % 2 = 0; ALTER TABLE task ADD COLUMN extra int;"
        "CREATE SCHEMA made_by_migration; CREATE TABLE made_by_migration.t (id int);"
        "INSERT INTO billing.invoice (amount) SELECT 1000 + g FROM generate_series(1, 50) g;"
        "UPDATE billing.invoice SET amount = amount + 1 WHERE id <= 10"
    )
    other_app = _only(checksums(database), "billing")

    code, result, _, stderr = run_step(
        ["restore", "--location", loc, "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == 0 and result is not None, stderr
    after = checksums(database)
    assert _only(after, "billing") == other_app  # the other app's rows written since the backup stay
    assert {k: v for k, v in after.items() if not k.removeprefix("seq:").startswith("billing.")} == {
        k: v for k, v in before.items() if not k.removeprefix("seq:").startswith("billing.")
    }
    assert database.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'made_by_migration'") == "0"
    assert "billing" not in str(result["data"].get("foreignWrites"))
    assert all(not k["sequence"].startswith("billing.") for k in result["data"]["sequencesKept"])


def test_a_schema_the_database_does_not_have_is_refused_at_backup(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    code, result, _, stderr = run_step(
        ["backup", "--location", location_for(bucket), "--schema", "public", "--schema", "Audit"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == errors.InvalidInput.exit_code, stderr
    assert result is not None and "'Audit': no such schema" in result["message"]
