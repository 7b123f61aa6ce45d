"""Print the fault table from the rows tests/faults recorded, and regenerate docs/faults.md from them.

    python -m tests.faults.report                  # print the table
    python -m tests.faults.report --write docs/faults.md

The rows come from :mod:`tests.faults.recording` (build/faults/results.jsonl,
or $FAULTS_RESULTS); the newest row of each test wins. Exit code 1 when a row
failed, lacks "data intact: yes", or did not end in the expected phase — so
`make faults` fails loudly, and the README table can never claim more than
the last run showed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.faults.recording import RESULTS

HEADER = ("#", "fault", "expected", "observed phase", "data intact", "PG", "s")

LIMITS = """\
## Faults not injected here, and why

- **Kopf peering between two operators.** The chart ships no `KopfPeering` CRDs and
  pins `replicas: 1` with the `Recreate` strategy (`values.schema.json` rejects
  `replicaCount: 2`), so peering is not a supported shape and the test bed does not
  install it. What the table shows instead: two operator processes running at once
  (as during a botched manual roll-out) both act, and still no step runs twice —
  Job names are deterministic, the second create gets 409 and adopts.
- **Node loss for good.** The bed's pods run on one real node (kubelet + containerd);
  a kubelet crash and restart mid-step is in the table. A node that never comes back
  is not: its pods are only failed by the taint-based eviction (`tolerationSeconds:
  300` by default), minutes per row, beyond this matrix's budget, and the session's
  one node serves every later test of its worker. For a run it means a step pod that
  vanished or was killed, which the table injects (the migrate process SIGKILLed, its
  Job deleted, the restore SIGKILLed mid-index-build).
- **Network partitions with packet loss or latency** (as opposed to a stopped
  server): the test bed runs on loopback without `tc`/netem; a stopped server is
  the harshest case it can make, and is in the table.
- **Disk full on the S3 server or on PostgreSQL**: not injectable without a
  size-limited filesystem (loop mounts need privileges the CI machine lacks).
"""


#: Table order (the issue's list): the test module a row comes from, then PostgreSQL version.
ORDER = (
    "test_migrations.py",
    "test_processes.py",
    "test_operator_restarts.py",
    "test_concurrency.py::test_two_op",
    "test_servers.py",
    "test_backups.py",
    "test_concurrency.py",
    "test_restore_integrity.py",
)


def _rank(row: dict[str, Any]) -> tuple[int, int]:
    rank = next((i for i, part in enumerate(ORDER) if part in row["id"]), len(ORDER))
    return rank, int(row.get("pg") or 15)


def load(path: Path = RESULTS) -> list[dict[str, Any]]:
    """Rows in table order, the newest of each test id winning."""
    rows: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows.pop(row["id"], None)
                rows[row["id"]] = row
    return sorted(rows.values(), key=_rank)


def _intact(row: dict[str, Any]) -> str:
    return {True: "yes", False: "no", None: "unknown"}[row.get("dataIntact")]


def cells(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    out = []
    for n, row in enumerate(rows, 1):
        observed = row.get("observed") or "?"
        if not row.get("passed"):
            observed += " (TEST FAILED)"
        out.append(
            (
                str(n),
                row["fault"],
                row["expected"],
                observed,
                _intact(row),
                str(row.get("pg") or "15"),
                f"{row.get('seconds', 0):.0f}",
            )
        )
    return out


def ok(row: dict[str, Any]) -> bool:
    return bool(row.get("passed")) and row.get("dataIntact") is True and row.get("observed") == row["expected"]


def text_table(rows: list[dict[str, Any]]) -> str:
    table = [HEADER, *cells(rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    body = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    body += ["| " + " | ".join(esc(c) for c in r) + " |" for r in cells(rows)]
    notes = [f"- row {n}: {esc(note)}" for n, row in enumerate(rows, 1) for note in row.get("notes") or []]
    notes += [f"- row {n}: test failed: {esc(row['error'])}" for n, row in enumerate(rows, 1) if row.get("error")]
    total = sum(r.get("seconds", 0) for r in rows)
    return "\n".join(
        [
            "# Fault matrix",
            "",
            "<!-- Generated by `make faults` (python -m tests.faults.report --write docs/faults.md). Do not edit. -->",
            "",
            "Each fault is injected for real on the test bed (real kube-apiserver and Job controller, real",
            "PostgreSQL, real S3 server, processes really killed). Columns: **expected** is the phase the",
            "design promises; **observed phase** is where the MigrationRun ended; **data intact** is measured",
            "with `pg_dump --schema-only` plus an md5 over every table's ordered rows (`tests/e2e/dbstate.py`):",
            "equal to before the run wherever a rollback was due or nothing may change; for `RollbackFailed`",
            "equal to a twin database on which the same failed migration ran by hand, or to the database as",
            "measured while the run held before its restore (no half-restore); for `Succeeded`, every row",
            "that was there is still there. The restore-integrity rows (issue 13) also compare what a",
            "schema-only dump leaves out: large objects, grants, the database's and its roles' settings, its",
            "ACL and comment, default privileges, publications (`tests/faults/outside_tables.py`). **PG** is",
            f"the PostgreSQL major the row ran on; **s** the test's seconds ({total:.0f} s in all).",
            "",
            *body,
            "",
            *(["Notes:", "", *notes, ""] if notes else []),
            LIMITS,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write", type=Path, default=None, help="also write the markdown page here")
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help=f"also replace the table between {README_START} and {README_END} in this file",
    )
    args = parser.parse_args(argv)
    rows = load(args.results)
    if not rows:
        print(f"no fault rows in {args.results}: run `make faults`", file=sys.stderr)
        return 1
    print(text_table(rows))
    bad = [r for r in rows if not ok(r)]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} faults ended as expected with data intact")
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(markdown(rows))
        print(f"wrote {args.write}")
    if args.readme:
        write_readme_table(args.readme, rows)
        print(f"updated the fault table in {args.readme}")
    return 1 if bad else 0


README_START = "<!-- faults:start (generated by `make faults`; do not edit) -->"
README_END = "<!-- faults:end -->"


def write_readme_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the marked block of ``path`` with the fault table (the README shows it, regenerated)."""
    text = path.read_text()
    start, end = text.index(README_START), text.index(README_END)
    body = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    body += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells(rows)]
    path.write_text(text[: start + len(README_START)] + "\n" + "\n".join(body) + "\n" + text[end:])


if __name__ == "__main__":
    sys.exit(main())
