"""The backup manifest: its shape, validation and the step result built from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alembic_operator.api import errors, termination
from alembic_operator.job.database import identifiers
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
        "identity",
        "startedAt",
        "finishedAt",
        "durationSeconds",
        "rowCountMode",
        "tables",
        "tableOids",
        "writeStats",
        "verification",
    }
    assert doc["v"] == 2 and doc["verification"] is None
    assert doc["startedAt"] == "2025-06-01T12:00:00.000Z" and doc["durationSeconds"] == 2.5


def test_timestamps_round_trip() -> None:
    assert manifest.parse_timestamp(manifest.timestamp(START)) == START
    assert manifest.parse_timestamp("garbage") is None and manifest.parse_timestamp(None) is None


@pytest.mark.parametrize(
    "value, words",
    [
        ([], "is not a version 1 or 2 backup manifest"),
        ({"v": 3}, "is not a version 1 or 2 backup manifest"),
        ({"v": 1, "format": "custom"}, "lacks key, sizeBytes, sha256, tables"),
        (
            {"v": 2, "format": "custom", "key": "k", "sizeBytes": 1, "sha256": "x", "tables": {"public.t": 1}},
            "not a list",
        ),
        (
            {
                "v": 2,
                "format": "custom",
                "key": "k",
                "sizeBytes": 1,
                "sha256": "x",
                "tables": [{"name": "a.b", "rows": 1}],
            },
            "is not a [schema, table] pair",
        ),
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
    encoded = termination.encode(termination.build(step="backup", ok=True, message="ok", data=data))
    assert len(encoded.encode()) < 1024


#: A manifest exactly as round 1 wrote it (version 1: "schema.table" keys, no identity).
V1 = {
    "v": 1,
    "format": "custom",
    "compression": None,
    "key": "shop/run-1/dump.pgdump",
    "sizeBytes": 1234,
    "sha256": "ab" * 32,
    "serverVersion": "15.18",
    "pgDumpVersion": "15.18",
    "revision": "abc",
    "database": "postgresql://app:***@db:5432/shop",
    "startedAt": "2025-06-01T12:00:00.000Z",
    "finishedAt": "2025-06-01T12:00:02.500Z",
    "durationSeconds": 2.5,
    "rowCountMode": "exact",
    "tables": {"public.task": 3000, "audit.comment": 1500},
    "writeStats": {"public.task": {"n_tup_ins": 3000, "n_tup_upd": 0, "n_tup_del": 0, "n_live_tup": 3000}},
    "verification": None,
}


def test_a_round_1_manifest_still_reads() -> None:
    doc = manifest.validate(V1, uri="s3://b/run/manifest.json")
    assert doc["tables"] == {"public.task": 3000, "audit.comment": 1500}
    assert doc["writeStats"]["public.task"]["n_tup_ins"] == 3000
    assert manifest.is_good(V1)


def test_version_2_stores_pairs_and_round_trips_any_name() -> None:
    odd = identifiers.label("my.schema", 'ta"ble $$ \\! x')
    doc = _doc()
    doc["tables"][odd] = 7
    doc["writeStats"][odd] = {"n_tup_ins": 7, "n_tup_upd": 0, "n_tup_del": 0, "n_live_tup": 7}
    stored = manifest.encode(doc)
    assert {"name": ["my.schema", 'ta"ble $$ \\! x'], "rows": 7} in stored["tables"]
    assert stored["v"] == 2
    back = manifest.validate(json.loads(json.dumps(stored)), uri="s3://b/run/manifest.json")
    assert back["tables"] == doc["tables"] and back["writeStats"] == doc["writeStats"]


@pytest.mark.parametrize(
    "schema, table",
    [("public", "task"), ("my.schema", "t"), ("a", 'b"c'), ("", "x"), ("é✓", "t a b"), ("s", "x" * 63), ('"', ".")],
)
def test_a_label_names_exactly_one_table(schema: str, table: str) -> None:
    assert identifiers.parse(identifiers.label(schema, table)) == (schema, table)


def test_table_oids_are_stored_in_each_table_entry_and_read_back() -> None:
    doc = {**_doc(), "tableOids": {"public.t1": 16390}}
    stored = manifest.encode(doc)
    assert "tableOids" not in stored
    assert {"name": ["public", "t1"], "rows": 10, "oid": 16390} in stored["tables"]
    assert manifest.validate(stored, uri="s3://b/m.json")["tableOids"] == {"public.t1": 16390}
