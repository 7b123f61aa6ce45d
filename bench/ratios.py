"""Issue 18's done-when ratios, as medians over the back-to-back pairs of one run.

Each ratio is the product's wall time over the plain tool's, measured as a pair back to back
(:mod:`bench.transfer` alternates which goes first); the table gives the median of the pairs,
their spread, and the load average before each. On a shared machine these are indicative: a
pair is only as quiet as the minute it ran in.

Must not: run anything (it reads the rows :mod:`bench.transfer` measured).
"""

from __future__ import annotations

from typing import Any

from bench.common import median, table
from bench.transfer import FAST_PATH, FAST_PATH_ZSTD3

GZIP, Z1, Z0 = "custom, default (gzip)", "custom, -Z1 (gzip 1)", "custom, -Z0 (none)"
#: The variants whose target is "same format and compression as a plain pg_dump to a local file".
SAME_SETTINGS = [GZIP, Z1, Z0]

#: (what, rows' key, the variant or source, the limit)
BACKUP_TARGETS = [
    ("fast path ÷ pg_dump -Fc default (gzip) to a file", FAST_PATH, 0.5),
    ("fast path at zstd:3 ÷ pg_dump -Fc default (gzip)", FAST_PATH_ZSTD3, 0.5),
    ("custom gzip 6 ÷ pg_dump -Fc, same compression", GZIP, 1.05),
    ("custom -Z1 ÷ pg_dump -Fc -Z1", Z1, 1.05),
    ("custom -Z0 ÷ pg_dump -Fc -Z0", Z0, 1.05),
    ("directory -j2 ÷ pg_dump -Fd -j2", "directory -j2, default (gzip)", 1.05),
]
RESTORE_TARGETS = [
    ("restore of the fast path ÷ pg_restore of the -Z0 file", FAST_PATH, 1.10),
    ("restore of gzip 6 ÷ pg_restore of the same file", GZIP, 1.10),
    ("restore of -Z0 ÷ pg_restore of the same file", Z0, 1.10),
]


def _line(what: str, pairs: list[dict[str, Any]], key: str, limit: float) -> list[Any]:
    ratios = [float(p[key]) for p in pairs]
    loads = [p["load_before"][0] for p in pairs if p.get("load_before")]
    mid = median(ratios)
    return [
        what,
        len(ratios),
        f"**{mid:.2f}**",
        f"{min(ratios):.2f}-{max(ratios):.2f}",
        f"≤ {limit:.2f}",
        "yes" if mid <= limit else "no",
        f"{min(loads):.1f}-{max(loads):.1f}" if loads else "—",
    ]


def references(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """What bounds the targets on this machine in this run, measured with the plain tools only: the fast
    path cannot beat ``pg_dump -Z0`` ÷ ``pg_dump`` default (the issue's "limit"), and the same-settings rows
    cannot beat the lesson's recipe (``pg_dump |`` a multipart upload, no checks) ÷ the local file."""

    def local_walls(compression: str | None) -> list[float]:
        """``pg_dump -Fc`` to a file at ``compression`` (None: its default), from every row that ran it."""
        return [
            float(r["pg_dump_s"])
            for r in rows
            if r.get("format") == "custom" and r.get("local_compression") == compression and r.get("pg_dump_s")
        ]

    out: list[list[Any]] = []
    default, none = local_walls(None), local_walls("0")
    if default and none:
        limit = median(none) / median(default)
        out.append(
            [
                "(the fast path's floor) pg_dump -Fc -Z0 ÷ pg_dump -Fc default, both to a file, medians",
                f"{len(none)} / {len(default)}",
                f"{limit:.2f}",
                "—",
                "—",
                "≤ 0.50 reachable" if limit <= 0.5 else "0.50 out of reach in this run",
                "—",
            ]
        )
    for variant in SAME_SETTINGS:
        pairs = [r for r in rows if r["variant"] == variant and r.get("recipe_s")]
        if pairs:
            recipe = [float(r["recipe_s"]) / float(r["pg_dump_s"]) for r in pairs]
            out.append(
                [
                    f"(the S3 path's own cost) recipe ÷ pg_dump to a file, {variant}",
                    len(recipe),
                    f"{median(recipe):.2f}",
                    f"{min(recipe):.2f}-{max(recipe):.2f}",
                    "—",
                    "—",
                    "—",
                ]
            )
    return out


def render(backups: dict[str, Any], restores: dict[str, Any] | None) -> str:
    rows: list[list[Any]] = []
    for what, variant, limit in BACKUP_TARGETS:
        pairs = [r for r in backups.get("rows", []) if r["variant"] == variant]
        if pairs:
            rows.append(_line(what, pairs, "ratio_vs_pg_dump", limit))
    for variant in (FAST_PATH, FAST_PATH_ZSTD3):
        fast = [r for r in backups.get("rows", []) if r["variant"] == variant]
        if not fast:
            continue
        sizes = [r["s3_bytes"] / r["local_bytes"] for r in fast]
        rows.append(
            [
                f"{variant.split(' vs ')[0]}: object ÷ pg_dump -Fc default file, bytes",
                len(sizes),
                f"**{median(sizes):.2f}**",
                f"{min(sizes):.2f}-{max(sizes):.2f}",
                "≤ 1.00",
                "yes" if max(sizes) <= 1 else "no",
                "—",
            ]
        )
    for what, source, limit in RESTORE_TARGETS:
        pairs = [r for r in (restores or {}).get("rows", []) if r["source"] == source]
        if pairs:
            rows.append(_line(what, pairs, "ratio_vs_pg_restore", limit))
    rows += references(backups.get("rows", []))
    return table(
        "Done-when ratios (issue 18): medians of back-to-back pairs in this run — indicative on a shared machine",
        ["ratio", "pairs", "median", "range", "target", "met?", "load avg (1 min) before"],
        rows,
    )
