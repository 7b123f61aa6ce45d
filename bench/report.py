"""Write docs/benchmarks.md from one ``python -m bench`` run (the lead copies it into the README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

INTRO = """# Benchmarks

`make bench` (`python -m bench`, about {minutes:.0f} minutes here) brings up the local test bed
(PostgreSQL {postgres}, the versitygw S3 server, and for the operator benchmarks a real
apiserver, controller manager, the real node — containerd, runc, kubelet — and the operator as its
ServiceAccount),
fills the example app's schema to the chosen size (`bench/datagen.py`), and compares the
product with the plain tools **back to back in the same run**. Each benchmark prints its
table and writes JSON to `bench/results/`. A larger size: `make bench BENCH_ARGS="--size 5GB"`;
a subset: `BENCH_ARGS="--only backup,restore"`; more repetitions: `--repeat 3`.

Latest run: `{command}`, {started}, {cpus} CPUs, {mem} GiB, load average {load_start} at the
start and {load_end} at the end. **Absolute times vary by tens of per cent between runs here** (a
virtual machine on a shared host; the scale benchmark loads it at the end), so compare the
ratios, which come from commands run one right after the other.
"""


def write(path: Path, *, summary: dict[str, Any], sections: list[str], notes: str = "") -> None:
    machine = summary["machine"]
    text = INTRO.format(
        minutes=summary["seconds"] / 60,
        postgres=summary.get("postgres", "?"),
        command=summary["command"],
        started=summary["started"],
        cpus=machine["cpus"],
        mem=machine["mem_gib"],
        load_start=summary["load_start"],
        load_end=summary["load_end"],
    )
    if "datagen" in summary:
        d = summary["datagen"]
        text += (
            f"\nData: {d['bytes'] / 1e6:,.0f} MB database (`pg_database_size`), {d['tasks']:,} tasks with "
            f"JSONB details and text, {d['comments']:,} comments, {d['projects']:,} projects, "
            f"{d['workers']:,} workers, all indexes and foreign keys; generated in {d['seconds']:.0f} s.\n"
        )
    text += "\n" + "\n".join(sections)
    notes_file = Path(__file__).resolve().parent / "NOTES.md"
    if notes_file.exists():
        text += "\n" + notes_file.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def sections_from_results(full_started: str) -> tuple[list[str], list[str]]:
    """Every benchmark's table from its JSON, in the order they run; and notes on the partial re-runs
    made after the full run (an older one was itself replaced by the full run)."""
    from bench import memory, overhead, parts, ratios, rehearsal, scale, transfer, verifying

    out: list[str] = []
    for name, render in (
        ("backup", lambda d: transfer.backup_table(d, d["db"]["bytes"])),
        ("restore", lambda d: transfer.restore_table(d, d["db"]["bytes"])),
        ("backup", lambda d: ratios.render(d, _load("restore"))),
        ("parts", parts.render),
        ("rehearsal", rehearsal.render),
        ("verify", verifying.render),
        ("overhead", overhead.render),
        ("scale", scale.render),
        ("memory", memory.render),
    ):
        data = _load(name)
        if data is not None:
            out.append(render(data))
    reruns = []
    for path in sorted(RESULTS.glob("summary-*.json")):
        partial = json.loads(path.read_text())
        if partial["started"] < full_started:  # ISO 8601 UTC stamps compare as text
            continue
        reruns.append(
            f"`{partial['command']}` at {partial['started']} (load average {partial['load_start']}) "
            f"replaced the {', '.join(partial['only'])} results of the full run."
        )
    return out, reruns


def rebuild(path: Path) -> None:
    summary = _load("summary")
    if summary is None:
        raise SystemExit("no bench/results/summary.json: run the benchmarks first")
    sections, reruns = sections_from_results(summary["started"])
    if reruns:
        sections.insert(0, "Re-runs after the full run: " + " ".join(reruns) + "\n")
    write(path, summary=summary, sections=sections)
