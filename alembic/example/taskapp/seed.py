"""Fill the example schema with realistic rows: ``python -m taskapp.seed --rows N`` (DATABASE_URL from env).

Tests and benchmarks need databases of a known size quickly, so rows go in
with COPY (asyncpg ``copy_records_to_table``), deterministic for a given
``--seed``. N is the number of tasks; projects (N/200), workers (N/50) and
comments (N/2) scale with it. Works at any revision from 0001 on: columns that
a revision has not added yet (priority, details) are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

STATUSES = ("pending", "in_progress", "done", "blocked")
PRIORITIES = ("low", "medium", "high")
WORDS = ("deploy", "invoice", "login", "report", "search", "billing", "export", "cache", "upgrade", "onboarding",
         "api", "dashboard", "email", "backup", "alerts", "payments")
LABELS = ("bug", "feature", "ops", "docs", "security", "perf", "ux")
BATCH = 50_000


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg keyword arguments from a postgresql:// or postgresql+asyncpg:// URL."""
    parts = urlsplit(url)
    return {"host": parts.hostname, "port": parts.port or 5432, "user": unquote(parts.username or "") or None,
            "password": unquote(parts.password) if parts.password else None,
            "database": unquote(parts.path.lstrip("/"))}


async def _columns(conn: Any, table: str) -> set[str]:
    rows = await conn.fetch("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name = $1", table)
    return {r[0] for r in rows}


async def _next_id(conn: Any, table: str) -> int:
    return int(await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}")) + 1


async def _copy(conn: Any, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    for i in range(0, len(records), BATCH):
        await conn.copy_records_to_table(table, records=records[i:i + BATCH], columns=columns)
    await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"(SELECT coalesce(max(id), 1) FROM {table}))")


async def seed(conn: Any, rows: int, *, seed: int = 0) -> dict[str, int]:
    """Insert ``rows`` tasks and the projects, workers and comments that go with them; return counts."""
    rnd = random.Random(seed)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    n_projects, n_workers, n_comments = max(1, rows // 200), max(1, rows // 50), rows // 2
    task_cols = await _columns(conn, "task")
    if not task_cols:
        raise SystemExit("taskapp.seed: table task does not exist; run the migrations first")
    async with conn.transaction():
        p0 = await _next_id(conn, "project")
        await _copy(conn, "project", ["id", "name", "description", "created_at"], [
            (p0 + i, f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS)} #{p0 + i}",
             "Example project" if i % 3 else None, now - timedelta(days=rnd.randint(0, 900)))
            for i in range(n_projects)])
        w0 = await _next_id(conn, "worker")
        await _copy(conn, "worker", ["id", "handle", "name", "kind"], [
            (w0 + i, f"worker-{w0 + i}", f"Worker {w0 + i}", "agent" if i % 4 == 0 else "human")
            for i in range(n_workers)])
        t0 = await _next_id(conn, "task")
        cols = ["id", "title", "description", "status", "project_id", "assignee_id", "created_at"]
        has_priority, has_details = "priority" in task_cols, "details" in task_cols
        cols += ["priority"] * has_priority + ["details"] * has_details
        tasks = []
        for i in range(rows):
            title = f"{'Urgent: ' if i % 17 == 0 else ''}{rnd.choice(WORDS)} {rnd.choice(WORDS)} task {t0 + i}"
            rec: list[Any] = [t0 + i, title, "Steps to reproduce: ..." if i % 2 else None, rnd.choice(STATUSES),
                              p0 + rnd.randrange(n_projects),
                              w0 + rnd.randrange(n_workers) if i % 5 else None,
                              now - timedelta(minutes=rnd.randint(0, 500_000))]
            if has_priority:
                rec.append(rnd.choice(PRIORITIES))
            if has_details:
                rec.append(json.dumps({"labels": rnd.sample(LABELS, rnd.randint(0, 3)),
                                       "estimate_hours": rnd.randint(1, 40), "source": rnd.choice(("web", "api"))}))
            tasks.append(tuple(rec))
        await _copy(conn, "task", cols, tasks)
        c0 = await _next_id(conn, "comment")
        await _copy(conn, "comment", ["id", "task_id", "author_id", "body", "created_at"], [
            (c0 + i, t0 + rnd.randrange(rows), w0 + rnd.randrange(n_workers),
             rnd.choice(("Looks good.", "Can you add a test?", "Blocked on review.", "Done, please check.")),
             now - timedelta(minutes=rnd.randint(0, 500_000)))
            for i in range(n_comments)] if rows else [])
    return {"project": n_projects, "worker": n_workers, "task": rows, "comment": n_comments if rows else 0}


async def _main(url: str, rows: int, seed_value: int) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(**connect_kwargs(url))
    try:
        return await seed(conn, rows, seed=seed_value)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskapp.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="number of tasks (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("taskapp.seed: DATABASE_URL is not set", file=sys.stderr)
        return 2
    counts = asyncio.run(_main(url, args.rows, args.seed))
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
