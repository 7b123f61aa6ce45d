"""`make demo`'s narration and its rehearsal and approval scenes (:mod:`testbed.demo` runs them).

The rehearsal scene shows the claim a user relies on: a migration that loses rows is caught on a
scratch copy and the real database is not touched. "Not touched" is checked, not asserted: the
real database's per-table row counts and schema fingerprint (the operator's own catalog queries,
:data:`alembic_operator.job.database.fingerprint.QUERIES`) are taken before and after and compared;
a difference is printed in red and fails the demo.

Must not: start or stop any part of the bed (demo.py owns it), or approve anything but its own run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Set as AbstractSet
from typing import Any

from rich.console import Console

from alembic_operator.job.database import fingerprint
from testbed import tools
from testbed.apps import TERMINAL, App
from testbed.cluster import Cluster
from testbed.postgres import PostgresServer

console = Console(highlight=False, soft_wrap=True)
COLOURS = {"Succeeded": "green", "Failed": "red", "RolledBack": "yellow", "RollbackFailed": "red"}


def follow(app: App, name: str, timeout: float = 300, until: AbstractSet[str] = TERMINAL) -> dict[str, Any]:
    """Print each phase change of the run until it reaches a phase of ``until``; return the object."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = app.get(name)
        status = run.get("status") or {}
        shown = (status.get("phase"), status.get("message"))
        if shown != last and shown[0]:
            colour = COLOURS.get(shown[0], "cyan")
            console.print(f"  [{colour}]{shown[0]:<16}[/{colour}] {shown[1] or ''}")
            last = shown
        if status.get("phase") in until:
            return dict(run)
        time.sleep(0.3)
    raise TimeoutError(f"{name} did not reach {sorted(until)} in {timeout}s")


def kubectl_show(cluster: Cluster, *args: str) -> None:
    console.print(f"[bold]$ kubectl {' '.join(args)}[/bold]")
    console.print(cluster.kubectl(*args).stdout.rstrip(), markup=False)


def database_state(pg: PostgresServer, dbname: str) -> dict[str, str]:
    """Exact row count per user table plus a SHA-256 of each schema catalog query's rows."""
    state = {
        f"rows {table}": pg.scalar(f"SELECT count(*) FROM {table}", dbname)
        for (table,) in pg.query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1", dbname
        )
    }
    for kind, sql in fingerprint.QUERIES.items():
        rows = "\x1e".join("\x1f".join(row) for row in pg.query(sql, dbname))
        state[f"schema {kind}"] = hashlib.sha256(rows.encode()).hexdigest()[:16]
    return state


def compare(before: dict[str, str], after: dict[str, str]) -> bool:
    """Print the before/after table; True when every entry is equal."""
    console.print(f"  {'':<28} {'before':>18} {'after':>18}")
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, "-"), after.get(key, "-")
        mark = "" if old == new else "   [red]CHANGED[/red]"
        console.print(f"  {key:<28} {old:>18} {new:>18}{mark}")
    return before == after


def rehearsal_catches(cluster: Cluster, app: App, pg: PostgresServer, dbname: str) -> bool:
    """spec.rehearsal.enabled: the rows-deleting migration fails verify on a copy; the database stays as it was."""
    before = database_state(pg, dbname)
    name = "shop-release-2-rehearsed"
    app.apply(app.manifest(name, image="example-app:deletes-rows", spec={"rehearsal": {"enabled": True}}))
    status = follow(app, name)["status"]
    rehearsal = status.get("rehearsal") or {}
    console.print(f"  phase {status['phase']}: {status.get('message')}")
    durations = ", ".join(f"{k} {v:.1f}s" for k, v in (rehearsal.get("durationsSeconds") or {}).items())
    console.print(f"  rehearsal on {rehearsal.get('database')}: {durations}; dropped: {rehearsal.get('dropped')}")
    for write in rehearsal.get("writes") or []:
        console.print(f"    on the copy {write['table']}: deleted {write.get('deleted', 0)}")
    kubectl_show(cluster, "get", "mrun", "-n", app.namespace)
    console.print("[bold]the real database, before and after the run:[/bold]")
    same = compare(before, database_state(pg, dbname))
    ok = same and status["phase"] == "Failed"
    console.print(
        "  [green]unchanged[/green]" if ok else "  [red]the real database changed or the run did not fail[/red]"
    )
    return ok


def approval(cluster: Cluster, app: App, pg: PostgresServer, dbname: str) -> bool:
    """spec.approval.required: the run waits in AwaitingApproval; `kubectl alembic approve-migration` lets it go."""
    name = "shop-release-3"
    spec = {"approval": {"required": True}, "rehearsal": {"enabled": True}}
    app.apply(app.manifest(name, image="example-app:slow", spec=spec))
    status = follow(app, name, until={"AwaitingApproval", *TERMINAL})["status"]
    if status["phase"] != "AwaitingApproval":
        return False
    console.print(f"  waiting for a person: {(status.get('approval') or {}).get('summary')}")
    kubectl_show(cluster, "get", "mrun", "-n", app.namespace, name)
    path = os.pathsep.join([str(tools.binary("kubectl").parent), str(tools.REPO / ".venv" / "bin"), os.environ["PATH"]])
    args = ["kubectl", "alembic", "approve-migration", name, "-n", app.namespace]
    console.print(f"[bold]$ {' '.join(args)}[/bold]")
    done = subprocess.run(
        [str(tools.binary("kubectl")), *args[1:]],
        env={**os.environ, "PATH": path, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    console.print(done.stdout.rstrip(), markup=False)
    status = follow(app, name)["status"]
    marker = pg.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'", dbname)
    console.print(f"  approved by {(status.get('approval') or {}).get('by')}; the migration's marker row: {marker}")
    return status["phase"] == "Succeeded" and marker == "1"
