"""The backup step: streamed to S3, checksummed, aborted on failure, verified by a scratch restore."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.api import location as locations
from alembic_operator.job.commands import backup
from alembic_operator.job.storage import manifest as manifest_doc
from alembic_operator.job.storage import s3 as s3_adapter

from . import (
    CONSOLE,
    REVISION,
    SAMPLE_ROWS,
    checksums,
    location_for,
    make_sample,
    object_sha256,
    read_json,
    run_main,
    run_step,
    step_env,
)

pytestmark = pytest.mark.testbed


def test_backup_uploads_the_dump_with_its_sha256_and_a_manifest(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    loc = location_for(bucket)
    code, result = run_main(
        ["backup", "--location", loc],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    assert result is not None and result["ok"] is True
    data = result["data"]
    client = s3.client()
    key = "shop/migrations/run-1/dump.pgdump"
    assert data["uri"] == f"s3://{bucket}/{key}"
    assert object_sha256(client, bucket, key) == data["sha256"]
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == data["sizeBytes"]
    stored = read_json(client, bucket, "shop/migrations/run-1/manifest.json")
    entries = {tuple(t["name"]): t for t in stored["tables"]}  # names as pairs
    assert stored["v"] == 2 and entries[("public", "task")]["rows"] == 3000
    assert entries[("public", "task")]["oid"] == int(database.scalar("SELECT 'public.task'::regclass::oid"))
    assert stored["identity"]["database"] == database.name
    assert stored["identity"]["systemIdentifier"] == database.scalar(
        "SELECT system_identifier FROM pg_control_system()"
    )
    manifest = manifest_doc.validate(stored, uri="manifest.json")
    assert manifest["sha256"] == data["sha256"] and manifest["sizeBytes"] == data["sizeBytes"]
    assert manifest["tables"] == SAMPLE_ROWS
    assert manifest["revision"] == REVISION == data["revision"]
    assert manifest["verification"] == {"method": "checksum", "ok": True, "mismatches": []}  # read back
    assert manifest["serverVersion"].split(".")[0] == str(database.server.major)
    assert manifest["pgDumpVersion"].split(".")[0] == str(database.server.major)  # exactly the server's major
    assert set(manifest["writeStats"]["public.task"]) == {"n_tup_ins", "n_tup_upd", "n_tup_del", "n_live_tup", "relid"}
    assert manifest["writeStats"]["public.task"]["n_tup_ins"] >= 3000
    assert database.server.password not in manifest["database"]
    assert data["tables"] == 4 and data["rows"] == sum(SAMPLE_ROWS.values())
    assert s3.open_uploads(bucket) == []


def test_backup_of_a_database_without_alembic_records_a_null_revision(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
    code, result = run_main(
        ["backup", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0 and result is not None
    assert result["data"]["revision"] is None and result["data"]["rows"] == 10


def test_directory_format_is_uploaded_as_a_tar_with_its_checksum(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    code, result = run_main(
        ["backup", "--location", location_for(bucket), "--format", "directory", "--jobs", "2", "--compression", "0"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    assert result is not None and result["data"]["uri"].endswith("/dump.tar")
    assert object_sha256(s3.client(), bucket, "shop/migrations/run-1/dump.tar") == result["data"]["sha256"]


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_a_folder_with_a_manifest_is_refused_never_adopted(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    env = step_env(database_url=database.url, s3=s3)
    _, first = run_main(
        ["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    database.execute("DELETE FROM audit.comment")
    code, second = run_main(
        ["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    assert first is not None and first["ok"] and second is not None
    assert code == errors.BackupFailed.exit_code and "never adopts a manifest it did not write" in second["message"]
    stored = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert stored["sha256"] == first["data"]["sha256"]  # the first backup is left as it was


def test_backup_verify_restore_passes_and_drops_the_scratch_database(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    code, result, _stdout, stderr = run_step(
        ["backup", "--location", location_for(bucket), "--verify", "restore"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == 0, stderr
    assert result is not None and result["data"]["verification"] == {"method": "restore", "ok": True}
    manifest = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert manifest["verification"] == {"method": "restore", "ok": True, "mismatches": []}
    left = database.server.query("SELECT datname FROM pg_database WHERE datname LIKE 'alembic_operator_verify_%'")
    assert left == []


def test_restore_verification_names_the_table_whose_count_differs(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    env = step_env(database_url=database.url, s3=s3)
    code, _ = run_main(
        ["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    assert code == 0
    loc = locations.Location.parse(location_for(bucket))
    doc = manifest_doc.validate(read_json(s3.client(), bucket, loc.key(locations.MANIFEST)), uri="manifest.json")
    doc["tables"]["public.task"] = 3001  # doctored: the real scratch restore holds 3000
    store = s3_adapter.Bucket(settings=s3_adapter.settings_from_env(), bucket=bucket)
    from alembic_operator.job.database import urls

    mismatches = backup.verify_by_restore(
        url=urls.DatabaseURL.parse(database.url),
        create=True,
        bucket=store,
        loc=loc,
        doc=doc,
        server_major=database.server.major,
    )
    assert [m.as_dict() for m in mismatches] == [{"table": "public.task", "expected": 3001, "actual": 3000}]
    assert "public.task has 3000 rows, expected 3001" in mismatches[0].describe()
    left = database.server.query("SELECT datname FROM pg_database WHERE datname LIKE 'alembic_operator_verify_%'")
    assert left == []


def test_backup_records_counts_of_the_dumped_snapshot_not_later_writes(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows inserted by others while the dump runs are neither counted nor dumped."""
    make_sample(database)
    from alembic_operator.job.database import postgres as pg_adapter

    real_counts = pg_adapter.exact_counts

    written: list[bool] = []

    def foreign_write_then_counts(conn: Any) -> Any:  # first call: inside the backup's snapshot
        if not written:
            written.append(True)
            database.execute("INSERT INTO project (name) VALUES ('written during the backup')")
        return real_counts(conn)

    monkeypatch.setattr(pg_adapter, "exact_counts", foreign_write_then_counts)
    code, result = run_main(
        ["backup", "--location", location_for(bucket), "--verify", "restore"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    manifest = manifest_doc.validate(read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json"), uri="m")
    assert manifest["tables"]["public.project"] == 40
    assert manifest["verification"]["ok"] is True  # the dump holds 40 too
    assert database.scalar("SELECT count(*) FROM project") == "41"


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found.append((int(entry), comm))
    return found


def test_killing_pg_dump_mid_stream_leaves_no_object_and_no_open_upload(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # ~100 MB uncompressed: big enough that parts are uploaded before pg_dump is killed.
    database.execute(
        "CREATE TABLE big (id int, body text); "
        "INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g"
    )
    before = checksums(database)
    key = "shop/migrations/run-1/dump.pgdump"
    client = s3.client()
    term = tmp_path / "term.json"
    proc = subprocess.Popen(
        [
            str(CONSOLE),
            "--log-level",
            "WARNING",
            "--termination-message-path",
            str(term),
            "backup",
            "--location",
            location_for(bucket),
            "--compression",
            "0",
        ],
        env=step_env(database_url=database.url, s3=s3),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = False
    parts_before_kill = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        dumps = [pid for pid, comm in _children(proc.pid) if comm == "pg_dump"]
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if dumps and uploads:
            parts = client.list_parts(Bucket=bucket, Key=key, UploadId=uploads[0]["UploadId"]).get("Parts", [])
            if parts or time.monotonic() > deadline - 50:
                parts_before_kill = len(parts)
                os.kill(dumps[0], signal.SIGKILL)
                killed = True
                break
        time.sleep(0.01)
    _stdout, stderr = proc.communicate(timeout=60)
    assert killed, "pg_dump finished before it could be killed"
    assert proc.returncode == errors.BackupFailed.exit_code, stderr
    assert "pg_dump was killed by signal 9" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert s3.open_uploads(bucket) == []
    with pytest.raises(client.exceptions.ClientError) as err:
        client.head_object(Bucket=bucket, Key=key)
    assert err.value.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound")
    assert s3.keys(bucket) == []  # and no manifest
    assert checksums(database) == before
    print(f"parts uploaded before the kill: {parts_before_kill}")


def _backup_at(database: Any, s3: Any, bucket: str, run: str, tmp_path: Path, *extra: str) -> None:
    code, _, _, stderr = run_step(
        ["backup", "--location", location_for(bucket, run), *extra],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == 0, stderr


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_retention_keeps_the_newest_good_backups_and_ignores_folders_without_manifest(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    database.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    client = s3.client()
    for run in ("run-a", "run-b", "run-c"):
        _backup_at(database, s3, bucket, run, tmp_path)
    client.put_object(Bucket=bucket, Key="shop/migrations/run-failed/dump.pgdump", Body=b"partial")
    _backup_at(database, s3, bucket, "run-d", tmp_path, "--retention-keep-last", "2")
    folders = sorted({k.split("/")[2] for k in s3.keys(bucket)})
    assert folders == ["run-c", "run-d", "run-failed"]


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_retention_by_age_never_deletes_the_current_backup(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    database.execute("CREATE TABLE t (id int)")
    _backup_at(database, s3, bucket, "run-old", tmp_path)
    time.sleep(1.2)
    _backup_at(database, s3, bucket, "run-new", tmp_path, "--retention-max-age-seconds", "1")
    folders = sorted({k.split("/")[2] for k in s3.keys(bucket)})
    assert folders == ["run-new"]


# ---- bad input: one line, non-zero exit, no change, no password ------------------------------------------


def _bad_inputs(database: Any, s3: Any, bucket: str) -> dict[str, tuple[dict[str, str], list[str], int]]:
    good = database.url
    host_down = good.replace(f":{database.server.port}/", ":1/")
    wrong_pw = database.url_for(password="not-the-password")
    loc = location_for(bucket)
    return {
        "missing DATABASE_URL": ({}, ["backup", "--location", loc], 2),
        "malformed DATABASE_URL": ({"DATABASE_URL": "mysql://u:p@h/db"}, ["backup", "--location", loc], 2),
        "wrong password": ({"DATABASE_URL": wrong_pw}, ["backup", "--location", loc], 3),
        "unreachable host": ({"DATABASE_URL": host_down}, ["backup", "--location", loc], 3),
        "missing bucket": ({}, ["backup", "--location", location_for("no-such-bucket-x")], 4),
        "wrong S3 credentials": ({"AWS_SECRET_ACCESS_KEY": "wrong-secret-key"}, ["backup", "--location", loc], 4),
        "unreachable S3 endpoint": ({"S3_ENDPOINT": "http://127.0.0.1:1"}, ["backup", "--location", loc], 4),
        "location not s3": ({}, ["backup", "--location", "gs://bucket/x/run/"], 2),
        "location without run folder": ({}, ["backup", "--location", f"s3://{bucket}"], 2),
        "verify without manifest": ({}, ["verify", "--location", loc], 4),
        "restore without manifest": ({}, ["restore", "--location", loc], 4),
    }


CASES = [
    "missing DATABASE_URL",
    "malformed DATABASE_URL",
    "wrong password",
    "unreachable host",
    "missing bucket",
    "wrong S3 credentials",
    "unreachable S3 endpoint",
    "location not s3",
    "location without run folder",
    "verify without manifest",
    "restore without manifest",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_in_one_line_without_changing_anything(
    case: str, database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    overrides, argv, exit_code = _bad_inputs(database, s3, bucket)[case]
    env = step_env(database_url=None if case == "missing DATABASE_URL" else database.url, s3=s3)
    env.update(overrides)
    started = time.monotonic()
    code, result, stdout, stderr = run_step(argv, env=env, tmp_path=tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    assert code == exit_code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for secret in (database.server.password, "not-the-password", s3.secret_key, "wrong-secret-key"):
        assert secret not in stderr and secret not in stdout
        assert result is None or secret not in str(result)
    assert result is not None and result["ok"] is False and result["changedDatabase"] is False
    assert elapsed < 20, f"{case} took {elapsed:.1f}s to fail"
    assert checksums(database) == before
    assert s3.keys(bucket) == [] and s3.open_uploads(bucket) == []
