"""``python -m bench.backup_phases``: where one backup's wall time goes, phase by phase.

The backup table gives the product's whole wall against ``pg_dump`` to a local file. This runs
the backup step as its own process (so the interpreter's start and the imports count, as in a
step pod), each phase wrapped to print when it started and ended, in seconds from the moment
the parent started the process (``CLOCK_MONOTONIC`` is one clock for every process), beside
``pg_dump`` to a local file at the same settings, each after :func:`bench.transfer.quiesce`.
It shows which costs are fixed (start-up, preflight, the S3 server's completion, the read-back
that proves the object) and whether the dump itself streams as fast as to a file.

Must not: change what it times (the wrappers only read the clock) or write docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench import bed as bedmod
from bench import common, datagen, phase_timing, transfer

#: (module, attribute path) timed, in the order a custom-format backup reaches them.
PHASES = (
    ("alembic_operator.job.database.pgtools", "pg_dump"),
    ("alembic_operator.job.storage.s3", "Bucket.check"),
    ("alembic_operator.job.storage.s3", "Bucket.multipart"),
    ("alembic_operator.job.database.dumping", "dump_custom"),
    ("alembic_operator.job.database.snapshot_counts", "Counting.result"),
    ("alembic_operator.job.storage.s3", "MultipartWriter.complete"),
    ("alembic_operator.job.commands.backup", "read_back"),
    ("alembic_operator.job.storage.s3", "Bucket.put_json"),
)
CUSTOM = [
    key for key, (_, fmt, _, _) in zip(transfer.VARIANT_KEYS, transfer.BACKUP_VARIANTS, strict=True) if fmt == "custom"
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backup_phases", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=datagen.parse_size, default=datagen.parse_size("1GB"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variants", default="gzip,z1,z0", help=f"custom-format variants ({','.join(CUSTOM)})")
    parser.add_argument(
        "--step-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for the backup step (repeatable), e.g. --step-arg=--row-counts=estimated",
    )
    args = parser.parse_args(argv)
    chosen = transfer.variants(args.variants)
    if any(fmt != "custom" for _, fmt, _, _ in chosen):
        parser.error(f"--variants: only the custom format's ({','.join(CUSTOM)})")
    with bedmod.bed() as b:
        db, made = datagen.fill_new(b.pg, "bench", args.size, log=lambda *_: None)
        common.say(f"database: {made['bytes'] / common.MB:,.0f} MB")
        bucket = b.s3.create_bucket("bench")
        local = b.workdir / "local.dump"
        warm_up = [str(b.pg.tool("pg_dump")), "-w", "-Fc", "-Z0", "-d", db, "-f", str(local)]
        common.timed(warm_up, env=b.pg.env())
        phases = ",".join(f"{module}:{path}" for module, path in PHASES)
        env = {**b.step_env(b.pg.url(db)), phase_timing.PHASES: phases, "PYTHONPATH": os.pathsep.join(sys.path)}
        for attempt in range(args.repeat):
            for name, _, comp, local_comp in chosen:
                transfer.quiesce(b.pg)
                dump = [str(b.pg.tool("pg_dump")), *transfer.dump_args("custom", local_comp), "-d", db]
                dump += ["-f", str(local)]
                wall = common.timed(dump, env=b.pg.env())
                step = ["backup", "--location", f"s3://{bucket}/phases/{attempt}-{comp}/", *args.step_arg]
                step += ["--compression", comp] if comp is not None else []
                transfer.quiesce(b.pg)
                started = time.monotonic()
                proc = subprocess.run(
                    [bedmod.VENV_BIN / "python", "-m", "bench.phase_timing", *step],
                    env={**env, phase_timing.ORIGIN: repr(started)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                total = time.monotonic() - started
                common.say(f"{name}, attempt {attempt}: pg_dump to a file {wall:.2f} s")
                common.say("\n".join(line for line in proc.stderr.splitlines() if line.startswith("  ")))
                common.say(f"  alembic-operator backup {total:.2f} s (÷ pg_dump {total / wall:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
