"""The clock wrappers of ``bench.backup_phases`` and ``bench.restore_phases``, and the entry that
runs a step with its phases wrapped in a process of its own.

``python -m bench.phase_timing SUBCOMMAND ARGS`` wraps the ``module:attribute`` pairs listed in
``$BENCH_PHASES`` and runs ``alembic-operator SUBCOMMAND ARGS``; each line it prints to stderr is
seconds since ``$BENCH_PHASES_ORIGIN``, a ``time.monotonic()`` reading the parent took just before
starting it (``CLOCK_MONOTONIC`` is one clock for every process), so the interpreter's start and
the imports count as a step pod pays them.

Must not: import anything of bench's (its start-up would be counted as the step's) or change what
it times (the wrappers only read the clock).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

ORIGIN = "BENCH_PHASES_ORIGIN"
PHASES = "BENCH_PHASES"


def timed_phase(function: Callable[..., Any], name: str, origin: list[float], log: list[str]) -> Callable[..., Any]:
    """``function``, appending to ``log`` when each call started and ended (seconds from ``origin[0]``)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            ended = time.monotonic()
            log.append(
                f"  {name:24s} {started - origin[0]:6.2f} → {ended - origin[0]:6.2f} s  ({ended - started:.2f} s)"
            )

    return wrapper


def wrap(phases: list[tuple[str, str]], origin: list[float], log: list[str]) -> None:
    """Wrap each ``(module, attribute path)``, e.g. ``("…storage.s3", "Bucket.check")``."""
    for module_name, path in phases:
        owner: object = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, timed_phase(getattr(owner, name), path, origin, log))


def main(argv: list[str]) -> int:
    origin, log = [float(os.environ[ORIGIN])], []
    log.append(f"  {'interpreter up':24s} {time.monotonic() - origin[0]:6.2f} s")
    from alembic_operator import cli

    subcommand = importlib.import_module(cli.SUBCOMMANDS[argv[0]].module)
    log.append(f"  {'imports done':24s} {time.monotonic() - origin[0]:6.2f} s  ({subcommand.__name__})")
    wrap([(module, path) for module, _, path in (p.partition(":") for p in os.environ[PHASES].split(","))], origin, log)
    try:
        return cli.main(argv)
    finally:
        log.append(f"  {'step returned':24s} {time.monotonic() - origin[0]:6.2f} s")
        print("\n".join(log), file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
