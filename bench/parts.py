"""The S3 multipart part size, measured: the fast path's upload at 8, 16 and 64 MiB parts.

The backup's part size is :func:`alembic_operator.job.storage.parts.part_size` (8 MiB at least,
larger only when 9,000 parts would not hold the dump); up to four parts upload at once within
a 64 MiB budget. This measures what the choice costs without pg_dump in the way: the -Z0 archive
the backup benchmark dumped to a local file is compressed (the product's zstd sink) into the
product's multipart writer, by a subprocess (``python -m bench.parts FILE BUCKET KEY MIB``, the
step's environment), at each size in turn, sizes alternating order across repetitions.

Must not: change the product's part size (it only measures the candidates).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import rss
from bench.bed import VENV_BIN, Bed
from bench.common import MB, loadavg, median, say, table

SIZES_MIB = (8, 16, 64)


def upload(path: str, bucket: str, key: str, part_mib: int) -> None:
    """The fast path's upload of ``path`` at ``part_mib`` MiB parts (in this process)."""
    from alembic_operator.job.storage import codecs, s3
    from alembic_operator.job.storage import parts as storage_parts

    writer = s3.Bucket(settings=s3.settings_from_env(), bucket=bucket).multipart(
        key, part_bytes=part_mib * storage_parts.MiB
    )
    choice = codecs.choose(fmt="custom", compression=None)
    sink = codecs.sink(choice, into=writer)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(storage_parts.MiB):
                sink.write(chunk)
        sink.close()
        writer.complete()
    except BaseException:
        writer.abort()
        raise


def run(b: Bed, *, source: Path, bucket: str, repeat: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for attempt in range(max(1, repeat)):
        order = SIZES_MIB if attempt % 2 == 0 else tuple(reversed(SIZES_MIB))
        for part in order:
            env = {**b.step_env(b.pg.url("postgres")), "PYTHONPATH": str(Path(__file__).parents[1])}
            load = loadavg()
            argv = [VENV_BIN / "python", "-m", "bench.parts", str(source), bucket, f"parts/{part}-{attempt}", str(part)]
            wall, cpu, peak = rss.timed(argv, env=env)
            rows.append(
                {"part_mib": part, "attempt": attempt, "s": wall, "cpu_s": cpu, "rss_bytes": peak.tree, "load": load}
            )
            say(f"  {part} MiB parts: {wall:.1f}s (CPU {cpu:.1f}s), peak RSS {peak.tree / rss.MiB:.0f} MiB")
    return {"rows": rows, "source_bytes": source.stat().st_size}


def render(data: dict[str, Any]) -> str:
    lines = []
    for part in SIZES_MIB:
        mine = [r for r in data["rows"] if r["part_mib"] == part]
        if not mine:
            continue
        walls = [r["s"] for r in mine]
        lines.append(
            [
                part,
                len(mine),
                f"**{median(walls):.2f}**",
                f"{min(walls):.2f}-{max(walls):.2f}",
                f"{median([r['cpu_s'] for r in mine]):.2f}",
                f"{median([r['rss_bytes'] for r in mine]) / rss.MiB:,.0f}",
                f"{data['source_bytes'] / MB / median(walls):,.0f}",
            ]
        )
    return table(
        f"Part size: zstd + multipart upload of the {data['source_bytes'] / MB:,.0f} MB -Z0 archive (no pg_dump)",
        ["part MiB", "runs", "median s", "range", "client CPU s", "peak RSS MiB", "archive MB/s"],
        lines,
    )


if __name__ == "__main__":
    upload(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
