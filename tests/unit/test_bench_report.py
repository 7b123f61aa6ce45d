"""bench.ratios' reference rows and bench.report's re-run notes: what the benchmark document says
bounds a target, and which partial re-runs it claims replaced the full run's results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ratios, report, transfer


def _row(variant: str, *, pg_dump_s: float, recipe_s: float | None = None) -> dict[str, object]:
    """A backup row as bench.transfer writes it: the variant's format and local file's compression too."""
    [(fmt, local_compression)] = [(f, local) for name, f, _, local in transfer.BACKUP_VARIANTS if name == variant]
    row = {"variant": variant, "pg_dump_s": pg_dump_s, "recipe_s": recipe_s}
    return {**row, "format": fmt, "local_compression": local_compression}


def test_the_fast_paths_floor_is_pg_dump_z0_over_the_default_both_from_this_run() -> None:
    rows = [_row(transfer.FAST_PATH, pg_dump_s=20.0), _row(ratios.Z0, pg_dump_s=10.8, recipe_s=10.8)]
    floor = ratios.references(rows)[0]
    assert floor[2] == "0.54"
    assert floor[5] == "0.50 out of reach in this run"
    rows[1]["pg_dump_s"] = 7.6
    assert ratios.references(rows)[0][2:6:3] == ["0.38", "≤ 0.50 reachable"]


def test_the_recipe_row_is_the_plain_upload_over_the_local_file_per_setting() -> None:
    rows = [_row(ratios.Z1, pg_dump_s=8.0, recipe_s=9.0), _row(ratios.Z1, pg_dump_s=8.0, recipe_s=10.0)]
    (recipe,) = ratios.references(rows)
    assert recipe[0].endswith("custom, -Z1 (gzip 1)")
    assert recipe[1:4] == [2, "1.19", "1.12-1.25"]


def test_no_reference_row_without_both_sides_measured() -> None:
    assert ratios.references([_row(transfer.FAST_PATH, pg_dump_s=20.0)]) == []


def test_a_partial_rerun_older_than_the_full_run_is_not_reported_as_replacing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    for started in ("2026-11-26T02:19:09Z", "2026-12-01T06:00:00Z"):
        (tmp_path / f"summary-overhead-{started[:10]}.json").write_text(
            json.dumps({"command": "make bench", "started": started, "load_start": [1.0], "only": ["overhead"]})
        )
    _, reruns = report.sections_from_results("2026-12-01T04:28:22Z")
    assert len(reruns) == 1 and "2026-12-01T06:00:00Z" in reruns[0]
