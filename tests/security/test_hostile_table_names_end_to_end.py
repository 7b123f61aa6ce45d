"""Table names that try to break out of SQL text (issue 14, finding 3), through a real MigrationRun.

Round 1 spliced table names into a fixed dollar-quote tag inside the psql script a restore ran:
a name holding the tag ended the quote, and psql ran what followed — SQL, or a ``\\!`` shell
command in the pod that holds the database owner's URL and the S3 keys. Here an application's
database holds tables named with quotes, ``$$``, ``$alembic_operator$`` and backslash commands;
a run whose migration deletes rows is verified, fails and is restored by the operator's own
Jobs. The database must come back exactly (schema and every table's rows), and nothing a name
carries may have run. The pod's filesystem is not visible from here, so each payload's effect is
one the test can see from outside: a table created in the database (by SQL, or by psql started
from the shell with the pod's ``$DATABASE_URL``); the test first shows that payload works when
a shell does run it.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.e2e import dbstate
from tests.faults.support import on_pg15, seeded
from tests.steps.test_identifiers import _create, _sql_literal

#: Tables a payload would create if it ran; none may exist after the run.
PWNED = ("pwned_sql", "pwn", "pwned_shell")
SHELL_PAYLOAD = 'psql "$DATABASE_URL" -c "create table pwned_shell()"'
HOSTILE = [
    ("public", "$alembic_operator$;create table pwned_sql();--"),
    ("public", '$alembic_operator$\\! psql $DATABASE_URL -c "create table pwn()"'),
    ("public", f"$$;\\! {SHELL_PAYLOAD}"),
    ("public", f"x');\\! {SHELL_PAYLOAD}"),
    ("public", f'a"b";\\! {SHELL_PAYLOAD} --'),
    ("my.schema", 'it\'s a "quoted" $$ table'),
]


def _exists(database: Any, table: str) -> bool:
    return database.scalar(f"SELECT to_regclass('public.{table}') IS NOT NULL") == "t"


def _payload_works_when_a_shell_runs_it(database: Any) -> None:
    """Without this the absence of ``pwned_shell`` below would prove nothing."""
    env = {"DATABASE_URL": database.url, "PATH": f"{database.server.bin_dir}:/usr/bin:/bin"}
    subprocess.run(["sh", "-c", SHELL_PAYLOAD], env=env, check=True, capture_output=True, timeout=60)
    assert _exists(database, "pwned_shell")
    database.execute("DROP TABLE public.pwned_shell")


@on_pg15
def test_hostile_table_names_round_trip_through_a_rolled_back_run_and_nothing_they_carry_runs(
    app: Any, database: Any
) -> None:
    assert all(len(table.encode()) <= 63 for _, table in HOSTILE)  # PostgreSQL would truncate a longer one
    seeded(database, rows=50)
    _create(database, HOSTILE)
    _payload_works_when_a_shell_runs_it(database)
    before = dbstate.capture(database)
    pairs = ", ".join(f"({_sql_literal(schema)}, {_sql_literal(table)})" for schema, table in HOSTILE)
    created = database.scalar(f"SELECT count(*) FROM pg_tables WHERE (schemaname, tablename) IN ({pairs})")
    assert created == str(len(HOSTILE))  # whole names, none truncated

    app.apply(app.manifest("hostile", image="example-app:deletes-rows"))  # verify fails, the operator restores
    status = app.wait("hostile", timeout=240)["status"]

    assert status["phase"] == "RolledBack", json.dumps(status, indent=1)
    assert status["steps"]["verify"]["outcome"] == "Failed", status["steps"]["verify"]
    assert status["steps"]["restore"]["outcome"] == "Succeeded", status["steps"]["restore"]
    assert dbstate.capture(database) == before
    assert [table for table in PWNED if _exists(database, table)] == []
