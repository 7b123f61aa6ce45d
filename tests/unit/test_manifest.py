"""The backup manifest: its shape, validation and the step result built from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alembic_operator.api import errors, results
from alembic_operator.job.storage import manifest

START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def _doc(tables: int = 3) -> dict[str, object]:
    return manifest.build(
        fmt="custom",
        compression=None,
        key="shop/run-1/dump.pgdump",
        size_bytes=1234,
        sha256="ab" * 32,
        server_version="15.18",
        pg_dump_version="15.18",
        revision="abc",
        database="postgresql://app:***@db:5432/shop",
        started_at=START,
        finished_at=START + timedelta(seconds=2.5),
        row_count_mode="exact",
        tables={f"public.t{i}": i * 10 for i in range(tables)},
        write_stats={"public.t0": {"n_tup_ins": 1, "n_tup_upd": 0, "n_tup_del": 0, "n_live_tup": 1}},
    )


def test_the_manifest_has_the_documented_shape() -> None:
    doc = _doc()
    assert set(doc) == {
        "v",
        "format",
        "compression",
        "key",
        "sizeBytes",
        "sha256",
        "serverVersion",
        "pgDumpVersion",
        "revision",
        "database",
        "startedAt",
        "finishedAt",
        "durationSeconds",
        "rowCountMode",
        "tables",
        "writeStats",
        "verification",
    }
    assert doc["v"] == 1 and doc["verification"] is None
    assert doc["startedAt"] == "2025-06-01T12:00:00.000Z" and doc["durationSeconds"] == 2.5


def test_timestamps_round_trip() -> None:
    assert manifest.parse_timestamp(manifest.timestamp(START)) == START
    assert manifest.parse_timestamp("garbage") is None and manifest.parse_timestamp(None) is None


@pytest.mark.parametrize(
    "value, words",
    [
        ([], "is not a version 1 backup manifest"),
        ({"v": 2}, "is not a version 1 backup manifest"),
        ({"v": 1, "format": "custom"}, "lacks key, sizeBytes, sha256, tables"),
    ],
)
def test_a_broken_manifest_is_a_storage_error(value: object, words: str) -> None:
    with pytest.raises(errors.StorageError) as err:
        manifest.validate(value, uri="s3://b/run/manifest.json")
    assert words in err.value.message


def test_a_failed_restore_verification_makes_a_backup_not_good() -> None:
    doc = _doc()
    assert manifest.is_good(doc)
    doc["verification"] = {"method": "restore", "ok": False, "mismatches": []}
    assert not manifest.is_good(doc)
    assert not manifest.is_good(None)


def test_the_result_summary_fits_a_termination_message_even_for_2000_tables() -> None:
    data = manifest.summary(
        _doc(tables=2000), uri="s3://b/shop/run-1/dump.pgdump", manifest_uri="s3://b/shop/run-1/manifest.json"
    )
    assert data["tables"] == 2000 and data["rows"] == sum(i * 10 for i in range(2000))
    assert set(data) == {
        "uri",
        "sizeBytes",
        "sha256",
        "format",
        "durationSeconds",
        "serverVersion",
        "pgDumpVersion",
        "revision",
        "tables",
        "rows",
        "manifestUri",
    }
    encoded = results.encode(results.build(step="backup", ok=True, message="ok", data=data))
    assert len(encoded.encode()) < 1024
