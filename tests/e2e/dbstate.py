"""What "the database is unchanged" means in a test: schema text and per-table row checksums."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DatabaseState:
    schema: str
    rows: dict[str, str]  # table -> "count:md5"


def capture(database: Any) -> DatabaseState:
    """``pg_dump --schema-only`` (noise stripped) plus an md5 over every table's ordered rows."""
    server = database.server
    dump = subprocess.run(
        [str(server.tool("pg_dump")), "--schema-only", "--no-owner", "--no-privileges", "-d", database.name],
        env={**server.env()},
        capture_output=True,
        text=True,
        check=True,
    )
    schema = "\n".join(
        line
        for line in dump.stdout.splitlines()
        if line
        and not line.startswith("--")
        and not re.match(r"^(SET|SELECT pg_catalog)", line)
        and not line.startswith("\\restrict")
        and not line.startswith("\\unrestrict")
    )
    tables = [
        row[0]
        for row in database.query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1"
        )
    ]
    rows = {}
    for table in tables:
        rows[table] = database.scalar(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
        )
    return DatabaseState(schema=schema, rows=rows)


#: The database's insert/update/delete counters, summed over its tables.
COUNTERS_SQL = "SELECT sum(n_tup_ins) || '/' || sum(n_tup_upd) || '/' || sum(n_tup_del) FROM pg_stat_user_tables"


def settled_counters(database: Any) -> Any:
    """The database's insert/update/delete counters once a finished session's statistics have landed."""
    previous = None
    for _ in range(10):
        current = database.query(COUNTERS_SQL)
        if current == previous:
            return current
        previous = current
        time.sleep(1.5)
    return previous
