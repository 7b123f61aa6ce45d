"""``python -m bench.restore_phases``: where one restore's wall time goes, phase by phase.

The restore table gives the product's whole wall against ``pg_restore -d``; py-spy
(``--profile``) gives shares per thread, not the order of things. This runs the restore
step in this process, each phase wrapped to print when it started and ended (seconds from
the step's start), beside ``pg_restore -d`` of the same database as a ``-Z0`` file, each
after :func:`bench.transfer.quiesce`. In-process: the CLI's start-up (≈ 0.35 s, ``time
alembic-operator restore --help``) is not in it.

Must not: change what it times (the wrappers only read the clock) or write docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from unittest import mock

from bench import bed as bedmod
from bench import common, datagen, phase_timing, transfer

#: (module, function) pairs timed, in the order a full restore reaches them.
PHASES = (
    ("alembic_operator.job.database.pgtools", "restore_tools"),
    ("alembic_operator.job.checks.restore_preflight", "refuse_unrestorable"),
    ("alembic_operator.job.checks.restore_preflight", "check_foreign_writes"),
    ("alembic_operator.job.storage.archives", "download"),
    ("alembic_operator.job.database.postgres", "state"),
    ("alembic_operator.job.database.toc", "schemas_first"),
    ("alembic_operator.job.database.loading", "_pipe_restore"),
    ("alembic_operator.job.database.loading", "load"),
    ("alembic_operator.job.database.postgres", "exact_counts"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restore_phases", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=datagen.parse_size, default=datagen.parse_size("1GB"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    from alembic_operator.job.commands import restore as restore_step

    origin, log = [0.0], list[str]()
    phase_timing.wrap(list(PHASES), origin, log)
    with bedmod.bed() as b:
        db, made = datagen.fill_new(b.pg, "bench", args.size, log=lambda *_: None)
        common.say(f"database: {made['bytes'] / common.MB:,.0f} MB")
        bucket = b.s3.create_bucket("bench")
        backup = [bedmod.VENV_BIN / "alembic-operator", "backup", "--location", f"s3://{bucket}/phases/"]
        subprocess.run(backup, env=b.step_env(b.pg.url(db)), check=True, capture_output=True)
        local = b.workdir / "z0.dump"
        subprocess.run([b.pg.tool("pg_dump"), "-Fc", "-Z0", "-f", local, "-d", db], env=b.pg.env(), check=True)
        for attempt in range(args.repeat):
            target = b.pg.create_database(f"plain_{attempt}")
            transfer.quiesce(b.pg)
            wall, _ = common.timed_cpu(
                [b.pg.tool("pg_restore"), "-w", "--no-owner", "-d", target, local], env=b.pg.env()
            )
            common.say(f"pg_restore -d: {wall:.2f} s")
            target = b.pg.create_database(f"product_{attempt}")
            step = argparse.ArgumentParser()
            restore_step.add_arguments(step)
            options = step.parse_args(transfer.restore_args(f"s3://{bucket}/phases/"))
            transfer.quiesce(b.pg)
            with mock.patch.dict(os.environ, b.step_env(b.pg.url(target))):
                log.clear()
                origin[0] = time.monotonic()
                restore_step.run(options)
                total = time.monotonic() - origin[0]
            common.say("\n".join(log))
            common.say(f"alembic-operator restore, in-process: {total:.2f} s (÷ pg_restore -d {total / wall:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
