"""``python -m bench`` (``make bench``): the product against the plain tools, on the local test bed.

Runs, in one process and one test bed: datagen → backup → restore → the
rehearsal on the same database → verify (1,000 tables) → operator overhead (and orchestration per step) → scale → the
memory of the operator's indexes per run (no bed). Prints each table, writes
bench/results/<name>.json and docs/benchmarks.md. Comparisons are back to back
in the same run; on a shared machine only the ratios mean much.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common, datagen
from bench.bed import bed

ALL = ("backup", "restore", "parts", "rehearsal", "verify", "overhead", "scale", "memory")
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        type=datagen.parse_size,
        default=datagen.parse_size("1GB"),
        help="database size for backup/restore (100MB, 1GB, 5GB; default 1GB)",
    )
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of each backup/restore pair")
    parser.add_argument(
        "--variants",
        default=None,
        help="backup variants to run (comma-separated: fast,zstd3,gzip,z1,z0,dir; default all), e.g. fast,z0 at 5GB",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with backup: one more fast-path backup under py-spy, and with restore one restore of it "
        "(pip install -e '.[bench]'), summarised",
    )
    parser.add_argument("--scale-runs", type=int, default=100, help="MigrationRuns (and databases) at once")
    parser.add_argument(
        "--scale-databases",
        type=int,
        default=None,
        help="databases the scale runs share (runs on one database queue); default: one per run",
    )
    parser.add_argument("--scale-timeout", type=float, default=900, help="seconds to wait for the scale runs")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="profile the operator's memory in the scale run (top allocation sites; its RSS is then not the product's)",
    )
    parser.add_argument("--verify-tables", type=int, default=1000)
    parser.add_argument(
        "--memory-runs", type=int, default=1000, help="finished runs whose index memory is measured (no test bed)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the operator process (experiments, e.g. MALLOC_ARENA_MAX=2)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only rebuild docs/benchmarks.md from bench/results/*.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the test bed dir")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="write the results JSON here instead of bench/results/ (a trial run; docs/benchmarks.md untouched)",
    )
    args = parser.parse_args(argv)
    if args.results is not None:
        common.RESULTS = args.results.resolve()
        args.no_doc = True
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    from bench import transfer

    try:
        chosen = transfer.variants(args.variants)  # checked before any server starts
    except ValueError as exc:
        parser.error(str(exc))

    if args.report_only:
        from bench import report

        report.rebuild(DOC)
        common.say(f"wrote {DOC}")
        return 0
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = "make bench" + (
        f' BENCH_ARGS="{" ".join(sys.argv[1:] if argv is None else argv)}"'
        if (sys.argv[1:] if argv is None else argv)
        else ""
    )
    summary: dict = {
        "started": stamp,
        "command": command,
        "machine": machine(),
        "load_start": common.loadavg(),
        "size_target": args.size,
    }
    sections: list[str] = []
    with bed(keep=args.keep) as b:
        b.operator_env = dict(kv.split("=", 1) for kv in args.operator_env)
        if "scale" in only:  # one step pod per database at a time, and the node's own headroom
            b.max_pods = max(b.max_pods, min(args.scale_databases or args.scale_runs, args.scale_runs) + 20)
        summary["postgres"] = b.pg.server_version()
        scratch = b.workdir / "scratch"
        scratch.mkdir()
        if {"backup", "restore", "parts", "rehearsal"} & set(only):
            common.say(f"== datagen: {args.size / common.MB:,.0f} MB")
            db, made = datagen.fill_new(b.pg, "bench", args.size, log=common.say)
            summary["datagen"] = made
            common.say(
                f"  {made['bytes'] / common.MB:,.0f} MB in {made['seconds']:.0f}s "
                f"({made['bytes'] / common.MB / made['seconds']:.0f} MB/s)"
            )
        if {"backup", "restore", "parts"} & set(only):
            bucket = b.s3.create_bucket("bench")
            common.say("== backup")
            backups = transfer.run_backup(
                b,
                database=db,
                db_bytes=made["bytes"],
                bucket=bucket,
                scratch=scratch,
                repeat=args.repeat,
                chosen=chosen,
            )
            common.save("backup", {**backups, "db": made, "at": stamp})
            sections.append(transfer.backup_table(backups, made["bytes"]))
            common.say(sections[-1])
            if args.profile:
                from bench import profiling

                argv = [transfer.VENV_BIN / "alembic-operator", "backup", "--location", f"s3://{bucket}/profile/"]
                profile = profiling.record(argv, env=b.step_env(b.pg.url(db)), out=common.RESULTS / "profile.txt")
                common.save("profile", {**profile, "at": stamp})
                sections.append(profiling.render(profile))
                common.say(sections[-1])
            if "restore" in only:
                common.say("== restore")
                restores = transfer.run_restore(b, backups=backups, db_bytes=made["bytes"], repeat=args.repeat)
                common.save("restore", {**restores, "db": made, "at": stamp})
                sections.append(transfer.restore_table(restores, made["bytes"]))
                common.say(sections[-1])
                if args.profile:
                    from bench import profiling

                    profile = profiling.record_restore(b, backups=backups, out=common.RESULTS / "profile-restore.txt")
                    common.save("profile-restore", {**profile, "at": stamp})
                    what = "one restore of the fast path into an empty database"
                    sections.append(profiling.render(profile, what=what))
                    common.say(sections[-1])
            from bench import ratios

            sections.append(ratios.render(backups, restores if "restore" in only else None))
            common.say(sections[-1])
            if "parts" in only:
                from bench import parts

                common.say("== part size")
                source = next(Path(r["local_path"]) for r in backups["rows"] if r["variant"] == "custom, -Z0 (none)")
                data = parts.run(b, source=source, bucket=bucket, repeat=args.repeat)
                common.save("parts", {**data, "at": stamp})
                sections.append(parts.render(data))
                common.say(sections[-1])
        if "rehearsal" in only:
            from bench import rehearsal

            common.say("== rehearsal: the operator's rehearsal vs pg_restore -j2 + alembic upgrade by hand")
            data = rehearsal.run(b, database=db, scratch=scratch)
            common.save("rehearsal", {**data, "at": stamp})
            sections.append(rehearsal.render(data))
            common.say(sections[-1])
        if {"backup", "restore", "parts", "rehearsal"} & set(only):
            b.pg.drop_database(db)
            subprocess.run(["rm", "-rf", str(scratch)], check=False)
            scratch.mkdir()
        if "verify" in only:
            from bench import verifying

            common.say(f"== verify: row counts of {args.verify_tables} tables")
            data = verifying.run(b, tables=args.verify_tables)
            common.save("verify", {**data, "at": stamp})
            sections.append(verifying.render(data))
            common.say(sections[-1])
        if "overhead" in only:
            from bench import overhead

            common.say("== operator overhead: one MigrationRun vs its steps by hand")
            b.start_cluster()
            data = overhead.run(b)
            common.save("overhead", {**data, "at": stamp})
            sections.append(overhead.render(data))
            common.say(sections[-1])
        if "scale" in only:
            from bench import scale

            dbs = min(args.scale_databases or args.scale_runs, args.scale_runs)
            common.say(f"== scale: {args.scale_runs} MigrationRuns on {dbs} databases at once")
            b.start_cluster()
            b.trace_memory = args.tracemalloc  # from scale's own operator restart on, not the overhead run's
            data = scale.run(b, runs=args.scale_runs, timeout=args.scale_timeout, databases=dbs)
            common.save("scale", {**data, "at": stamp})
            sections.append(scale.render(data))
            common.say(sections[-1])
    if "memory" in only:
        from bench import memory

        common.say(f"== memory: the operator's indexes for {args.memory_runs} finished runs")
        data = memory.run(runs=args.memory_runs)
        common.save("memory", {**data, "at": stamp})
        sections.append(memory.render(data))
        common.say(sections[-1])
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["load_end"] = common.loadavg()
    summary["only"] = only
    full = set(only) == set(ALL)
    common.save("summary" if full else "summary-" + "-".join(only), summary)
    common.say(f"== done in {summary['seconds'] / 60:.1f} min; results in {common.RESULTS}")
    if not args.no_doc and full:
        from bench import report

        report.rebuild(DOC)
        common.say(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
