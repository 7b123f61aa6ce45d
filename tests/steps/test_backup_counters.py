"""The backup's write counters are read once, right before its snapshot, and no longer waited on
(issue 18): a row another session writes while the dump streams is not in the backup, is not
counted as backed up, and so holds a later restore as a foreign write (safety rule 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import postgres as pg_adapter

from . import location_for, make_sample, read_json, run_main, run_step, step_env

pytestmark = pytest.mark.testbed


def test_a_write_while_the_dump_streams_is_neither_backed_up_nor_counted_and_holds_the_restore(
    database: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(database)
    real_counts = pg_adapter.exact_counts
    written: list[bool] = []

    def write_then_count(conn: Any) -> Any:  # runs on the counting connection, in the dump's snapshot
        if not written:
            written.append(True)
            database.execute("INSERT INTO project (name) VALUES ('written while the dump streams')")
        return real_counts(conn)

    monkeypatch.setattr(pg_adapter, "exact_counts", write_then_count)
    code, result = run_main(
        ["backup", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0, result
    manifest = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    stats = {tuple(t["name"]): t for t in manifest["writeStats"]}
    rows = {tuple(t["name"]): t["rows"] for t in manifest["tables"]}
    assert written and rows[("public", "project")] == 40
    assert stats[("public", "project")]["n_tup_ins"] == 40  # read before the snapshot: the 41st is not in it
    assert manifest["writeStatsSettled"] is False  # the counters moved while the dump streamed

    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "hold"],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == errors.ForeignWritesDetected.exit_code, stderr
    assert result is not None and "public.project" in stderr
    assert database.scalar("SELECT count(*) FROM project") == "41"  # held: nothing was restored
