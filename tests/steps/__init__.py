"""Tests of the backup, verify and restore steps against real PostgreSQL and S3 servers.

Helpers shared by the step tests live here: a sample application schema
built with SQL (no Alembic app needed), per-table content checksums, and
runners for the step in-process (``cli.main``) and as the real console script.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import results
from testbed import postgres as tb_postgres

REPO = Path(__file__).resolve().parents[2]
CONSOLE = Path(sys.executable).parent / "alembic-operator"
REVISION = "a1b2c3d4e5f6"

SAMPLE_SQL = f"""
CREATE TABLE project (id serial PRIMARY KEY, name text NOT NULL UNIQUE, meta jsonb NOT NULL DEFAULT '{{}}');
CREATE TABLE task (id bigserial PRIMARY KEY, project_id int NOT NULL REFERENCES project(id),
                   title text NOT NULL, payload jsonb, done boolean NOT NULL DEFAULT false,
                   created_at timestamptz NOT NULL DEFAULT '2024-01-01T00:00:00Z');
CREATE INDEX task_payload_gin ON task USING gin (payload);
CREATE INDEX task_project ON task (project_id);
CREATE SEQUENCE ticket_seq START 1000;
CREATE SCHEMA audit;
CREATE TABLE audit.comment (id int PRIMARY KEY DEFAULT nextval('ticket_seq'), task_id bigint REFERENCES task(id),
                            body text, tags jsonb);
CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('{REVISION}');
INSERT INTO project (name, meta)
  SELECT 'project ' || g, jsonb_build_object('owner', 'user' || (g % 7), 'budget', g * 10.5, 'tags',
                                             jsonb_build_array('a', g, NULL, true))
  FROM generate_series(1, 40) g;
INSERT INTO task (project_id, title, payload, done)
  SELECT 1 + g % 40, 'task ' || g || E' with ''quotes'' and \\t tab',
         jsonb_build_object('n', g, 'nested', jsonb_build_object('deep', repeat('x', g % 50), 'u', 'é✓')),
         g % 3 = 0
  FROM generate_series(1, 3000) g;
INSERT INTO audit.comment (task_id, body, tags)
  SELECT 1 + g % 3000, CASE WHEN g % 10 = 0 THEN NULL ELSE 'comment ' || g END,
         jsonb_build_object('k', g % 5)
  FROM generate_series(1, 1500) g;
ANALYZE;
"""

#: Rows per table of the sample (alembic_version included).
SAMPLE_ROWS = {"public.project": 40, "public.task": 3000, "audit.comment": 1500, "public.alembic_version": 1}


def make_sample(db: Any) -> None:
    """Create the sample application (tables, JSONB, indexes, a FK, a sequence) in ``db``."""
    db.execute(SAMPLE_SQL)


def checksums(db: Any) -> dict[str, str]:
    """md5 of every user table's ordered rows, plus sequence positions: equal means identical data."""
    tables = db.query("""
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1""")
    result = {}
    for (table,) in tables:
        schema, name = table.split(".", 1)
        ident = f'"{schema}"."{name}"'
        result[table] = db.scalar(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {ident} t"
        )
    for (seq,) in db.query("SELECT schemaname || '.' || sequencename FROM pg_sequences ORDER BY 1"):
        result["seq:" + seq] = db.scalar(f"SELECT last_value || '/' || is_called FROM {seq}")
    return result


def bin_dirs(*, newest_first: bool = True) -> str:
    """PG_BIN_DIRS holding both majors (18 first by default: selection must still pick 15 for 15)."""
    dirs = [str(tb_postgres.bin_dir_for(18)), str(tb_postgres.bin_dir_for(15))]
    return ":".join(dirs if newest_first else list(reversed(dirs)))


def step_env(*, database_url: str | None, s3: Any, location: str | None = None, **extra: str) -> dict[str, str]:
    """The environment a step Job pod gets: DATABASE_URL, S3_*, AWS_* credentials, PG_BIN_DIRS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "PG"))}
    env.update(
        {
            "S3_ENDPOINT": s3.endpoint,
            "S3_REGION": s3.region,
            "S3_FORCE_PATH_STYLE": "true",
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "PG_BIN_DIRS": bin_dirs(),
            "PYTHONPATH": str(REPO),
            # steps here share one network namespace (a pod has its own): steps running at once
            # would race for the progress port, so it is not served (tests/unit/test_progress.py serves it)
            "ALEMBIC_OPERATOR_PROGRESS_PORT": "0",
        }
    )
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if location is not None:
        env["ALEMBIC_OPERATOR_LOCATION"] = location
    env.update(extra)
    return env


def run_step(
    argv: list[str], *, env: dict[str, str], tmp_path: Path, timeout: float = 300, cwd: Path | None = None
) -> tuple[int, dict[str, Any] | None, str, str]:
    """Run the real console script (in ``cwd``: an app's directory, as its image would); return
    (exit code, termination-message result, stdout, stderr)."""
    term = tmp_path / f"termination-{os.urandom(4).hex()}.json"
    proc = subprocess.run(
        [str(CONSOLE), "--log-level", "WARNING", "--termination-message-path", str(term), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = json.loads(term.read_text()) if term.exists() else None
    return proc.returncode, result, proc.stdout, proc.stderr


def run_main(
    argv: list[str], *, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, dict[str, Any] | None]:
    """Run ``alembic_operator.cli.main`` in-process with exactly ``env``."""
    from alembic_operator import cli

    for key in list(os.environ):
        if key.startswith(("AWS_", "S3_", "PG")) or key in ("DATABASE_URL", "ALEMBIC_OPERATOR_LOCATION"):
            monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    term = tmp_path / f"termination-{os.urandom(4).hex()}.json"
    code = cli.main(["--log-level", "WARNING", "--termination-message-path", str(term), *argv])
    return code, json.loads(term.read_text()) if term.exists() else None


def location_for(bucket: str, run: str = "run-1") -> str:
    return f"s3://{bucket}/shop/migrations/{run}/"


def object_sha256(client: Any, bucket: str, key: str) -> str:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def read_json(client: Any, bucket: str, key: str) -> Any:
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def written_results(folder: Path) -> list[tuple[Path, str]]:
    """(file, text) of every step result under ``folder``: JSON objects with v, step and ok."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict) and {"v", "step", "ok"} <= value.keys():
            found.append((path, text))
    return found


def assert_parses_into_its_model(text: str) -> results.StepResult:
    """The result as the operator reads it: the step's model, no error."""
    step = json.loads(text)["step"]
    parsed = results.parse(step, text)
    assert isinstance(parsed, results.StepResult), f"{step} wrote a result the operator cannot read: {parsed}"
    assert type(parsed.data) is results.DATA_MODELS[step]
    return parsed


def backed_up(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    """The sample (:func:`make_sample`) in ``database``, backed up to run-1 of ``bucket`` by the backup step."""
    make_sample(database)
    code, _, _, stderr = run_step(
        ["backup", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == 0, stderr
