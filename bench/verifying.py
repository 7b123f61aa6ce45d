"""Row counting on a database with many tables: ``alembic-operator verify`` in exact and estimated modes.

The database: ``--verify-tables`` tables (default 1,000) of 1,000 rows each,
ANALYZEd (as autovacuum would have). A backup with exact counts writes the
manifest verify compares with; then the verify step runs as a CLI (what its Job
runs: start-up, S3 manifest, counting, verify.json) in ``--mode exact`` and
``--mode estimated``, and the counting functions alone are timed in-process.
"""

from __future__ import annotations

import time
from typing import Any

from alembic_operator.job.database import postgres, urls
from bench.bed import VENV_BIN, Bed
from bench.common import loadavg, table, timed

ROWS = 1000


def run(b: Bed, *, tables: int) -> dict[str, Any]:
    pg = b.pg
    db = pg.create_database("many_tables")
    started = time.perf_counter()
    pg.execute(
        f"""DO $$ BEGIN FOR i IN 1..{tables} LOOP
        EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, note text)', i);
        EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g', i);
      END LOOP; END $$""",
        db,
    )
    pg.execute("ANALYZE", db)
    setup_s = time.perf_counter() - started
    bucket = b.s3.create_bucket("verify")
    loc = f"s3://{bucket}/many/run-1/"
    env = b.step_env(pg.url(db))
    out: dict[str, Any] = {
        "tables": tables,
        "rows_per_table": ROWS,
        "setup_s": round(setup_s, 2),
        "load_before": loadavg(),
    }
    out["backup_exact_s"] = timed([VENV_BIN / "alembic-operator", "backup", "--location", loc], env=env)
    for mode in ("exact", "estimated"):
        out[f"verify_{mode}_s"] = timed(
            [VENV_BIN / "alembic-operator", "verify", "--location", loc, "--mode", mode], env=env
        )
    url = urls.DatabaseURL.parse(pg.url(db))
    with postgres.connect(url=url) as conn:
        for mode, fn in (("exact", postgres.exact_counts), ("estimated", postgres.estimated_counts)):
            t0 = time.perf_counter()
            counts = fn(conn)
            out[f"count_{mode}_s"] = round(time.perf_counter() - t0, 3)
            out[f"count_{mode}_tables"] = len(counts)
    out["baseline_startup_s"] = timed([VENV_BIN / "alembic-operator", "--help"], env=env)
    pg.drop_database(db)
    return out


def render(d: dict[str, Any]) -> str:
    rows = [
        ["exact (count(*) per table)", f"{d['verify_exact_s']:.2f}", f"{d['count_exact_s']:.2f}"],
        ["estimated (pg_class.reltuples)", f"{d['verify_estimated_s']:.2f}", f"{d['count_estimated_s']:.2f}"],
    ]
    return table(
        f"Verify: row counts of {d['tables']:,} tables × {d['rows_per_table']:,} rows (seconds)",
        [
            "mode",
            "`alembic-operator verify` wall (CLI start-up, S3, counting, verify.json)",
            "counting alone (in-process)",
        ],
        rows,
    ) + (
        f"\nThe CLI's start-up alone (`alembic-operator --help`) takes {d['baseline_startup_s']:.2f} s; "
        f"the backup step with exact counts of the same database took {d['backup_exact_s']:.1f} s.\n"
    )
