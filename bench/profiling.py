"""Where a step's time goes: one run under py-spy (``pip install -e '.[bench]'``), summarised.

``py-spy record --idle --threads --format raw`` samples every Python thread of the step, waiting
ones included (a thread blocked on pg_dump's pipe or on a socket is time the step spends too).
:func:`summarise` folds the raw stacks into, per thread (upload threads ``s3-part_N`` as one),
its share of the samples and the frames it spent them in: the deepest frame of the package
itself and the leaf frame (a C call shows as the Python line that made it).

Must not: time anything (py-spy slows the run a little; the timed runs are not profiled).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RATE = 100
_THREAD = re.compile(r"^thread \(\d+\): ([^;]*)")


def record(argv: Sequence[object], *, env: Mapping[str, str], out: Path) -> dict[str, Any]:
    """Run ``argv`` under py-spy, write the raw stacks to ``out``, return :func:`summarise` of them."""
    spy = shutil.which("py-spy", path=str(Path(str(argv[0])).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    out.parent.mkdir(parents=True, exist_ok=True)
    options = ["record", "--idle", "--threads", "--format", "raw", "--rate", str(RATE), "-o", str(out)]
    subprocess.run(
        [spy, *options, "--", *map(str, argv)],
        env=dict(env),
        check=True,
        capture_output=True,
    )
    return summarise(out.read_text())


def _thread(name: str) -> str:
    return re.sub(r"_\d+$", "", name) or "?"


def summarise(raw: str, *, top: int = 6) -> dict[str, Any]:
    """``{"samples": N, "threads": {name: {"share", "package", "leaf"}}}`` from py-spy's raw stacks."""
    per_thread: dict[str, int] = collections.Counter()
    package: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        match = _THREAD.match(stack)
        name = _thread(match.group(1) if match else "?")
        frames = stack.split(";")[1:]
        n = int(count)
        total += n
        per_thread[name] += n
        ours = [f for f in frames if "alembic_operator" in f or "/job/" in f]
        package[name][ours[-1] if ours else "(outside the package)"] += n
        leaf[name][frames[-1] if frames else "(idle)"] += n
    return {
        "samples": total,
        "threads": {
            name: {
                "share": round(n / total, 3) if total else 0.0,
                "package": [[f, round(c / n, 3)] for f, c in package[name].most_common(top)],
                "leaf": [[f, round(c / n, 3)] for f, c in leaf[name].most_common(top)],
            }
            for name, n in sorted(per_thread.items(), key=lambda kv: -kv[1])
        },
    }


def record_restore(b: Any, *, backups: dict[str, Any], out: Path) -> dict[str, Any]:
    """:func:`record` of one restore of the fast path's first backup into a new, empty database."""
    from bench import transfer

    fast = next(r for r in backups["rows"] if r["variant"] == transfer.FAST_PATH and r["attempt"] == 0)
    target = b.pg.create_database("profile_restore")
    argv = [
        transfer.VENV_BIN / "alembic-operator",
        "restore",
        *transfer.restore_args(fast["location"], fast.get("binding", ())),
    ]
    try:
        return record(argv, env=b.step_env(b.pg.url(target)), out=out)
    finally:
        b.pg.drop_database(target)


def render(summary: dict[str, Any], *, what: str = "one fast-path backup") -> str:
    lines = [f"Profile of {what} (py-spy, {summary['samples']} samples at {RATE} Hz, idle included):", ""]
    for name, data in summary["threads"].items():
        lines.append(f"- thread `{name}`: {data['share']:.0%} of the samples")
        for frame, share in data["leaf"]:
            lines.append(f"  - {share:.0%} in `{frame}`")
        for frame, share in data["package"][:3]:
            lines.append(f"  - {share:.0%} under the package's `{frame}`")
    return "\n".join(lines) + "\n"
