"""Backup and restore against the plain tools, each pair back to back in one run.

Backup variants (format × compression PostgreSQL 15's pg_dump offers: gzip
levels; lz4/zstd need pg_dump ≥ 16 built with them):

- ``pg_dump`` to a local file (``-Fc -f x.dump`` / ``-Fd -j2 -f dir``): the baseline;
- ``alembic-operator backup`` to the S3 server (row counts, snapshot, multipart
  upload with SHA-256 on the fly, manifest): the product — with the same
  compression as the baseline, and (first row) its default fast path, pg_dump
  ``-Z0`` compressed by multi-threaded zstd on the way, against ``pg_dump -Fc``
  at its default (gzip 6): what a user would otherwise run;
- custom format only: the shell recipe ``pg_dump -Fc | python -m bench.recipe``
  (boto3 ``upload_fileobj`` from stdin).

The product's peak RSS (its process tree, and the Python process alone) is sampled
while it runs (:mod:`bench.rss`): a step pod's memory, which should not grow with
the database.

Restore: ``pg_restore -d`` from the local file (1 job, ``-j2``, and
``--single-transaction`` — the closest plain equivalent of the product's
atomic restore) vs ``alembic-operator restore`` from S3, bound to its backup as the operator binds
it (:func:`binding_args`: a backup that lists its chunks streams, each chunk checked before pg_restore
reads it; one without downloads and checks the whole SHA-256 first), in one transaction, each into a
fresh empty database, dropped afterwards.

Every timed command starts after :func:`quiesce` (CHECKPOINT, then ``sync``), and the two sides of
a pair take turns going first: otherwise the one that runs second pays for writing back the
first one's gigabyte.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic_operator.job.storage import manifest as storage_manifest
from bench import rss
from bench.bed import VENV_BIN, Bed
from bench.common import MB, loadavg, ratio, say, table, timed, timed_cpu

FAST_PATH = "custom, zstd fast path (the default) vs pg_dump -Fc default"
FAST_PATH_ZSTD3 = "custom, fast path at zstd:3 vs pg_dump -Fc default"
BACKUP_VARIANTS = [
    # name, format, the product's --compression (None: its default), pg_dump's -Z for the local file
    # (None: pg_dump's default, gzip level 6 for the custom format)
    (FAST_PATH, "custom", None, None),
    (FAST_PATH_ZSTD3, "custom", "zstd:3", None),
    ("custom, default (gzip)", "custom", "6", None),
    ("custom, -Z1 (gzip 1)", "custom", "1", "1"),
    ("custom, -Z0 (none)", "custom", "0", "0"),
    ("directory -j2, default (gzip)", "directory", None, None),
]
#: ``--variants`` keys, in BACKUP_VARIANTS' order (e.g. ``fast,z0`` for the fast path and its restore's baseline).
VARIANT_KEYS = ["fast", "zstd3", "gzip", "z1", "z0", "dir"]


def variants(keys: str | None) -> list[tuple[str, str, str | None, str | None]]:
    """The backup variants ``keys`` names (all when None); an unknown key is an error."""
    if keys is None:
        return list(BACKUP_VARIANTS)
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    unknown = set(wanted) - set(VARIANT_KEYS)
    if not wanted or unknown:
        named = f"unknown variant(s) {', '.join(sorted(unknown))}" if unknown else "no variant named"
        raise ValueError(f"--variants {keys!r}: {named}; known: {', '.join(VARIANT_KEYS)}")
    return [v for k, v in zip(VARIANT_KEYS, BACKUP_VARIANTS, strict=True) if k in wanted]


#: (backup restored by the product, local file pg_restore reads): equal settings — the fast path's
#: object decodes to pg_dump's -Z0 archive, so its baseline is the -Z0 file.
RESTORE_FROM = [
    (FAST_PATH, "custom, -Z0 (none)"),
    ("custom, default (gzip)", "custom, default (gzip)"),
    ("custom, -Z0 (none)", "custom, -Z0 (none)"),
]


def dump_args(fmt: str, compression: str | None) -> list[str]:
    args = ["-w", "-Fc" if fmt == "custom" else "-Fd"]
    if fmt == "directory":
        args.append("-j2")
    if compression is not None:
        args.append(f"-Z{compression}")
    return args


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_backup(
    b: Bed,
    *,
    database: str,
    db_bytes: int,
    bucket: str,
    scratch: Path,
    repeat: int = 1,
    chosen: list[tuple[str, str, str | None, str | None]] | None = None,
) -> dict[str, Any]:
    pg, env = b.pg, b.pg.env()
    step_env = b.step_env(b.pg.url(database))
    results: list[dict[str, Any]] = []
    # Warm-up (untimed): the first reader of freshly loaded tables pays for cold caches and hint bits.
    timed([pg.tool("pg_dump"), "-w", "-Fc", "-Z0", "-d", database, "-f", scratch / "warmup.dump"], env=env)
    (scratch / "warmup.dump").unlink()
    for index, (name, fmt, comp, local_comp) in enumerate(BACKUP_VARIANTS if chosen is None else chosen):
        slug = f"{index}-{fmt}-{comp if comp is not None else 'default'}"
        for attempt in range(repeat):
            out = scratch / f"{slug}.{'dump' if fmt == 'custom' else 'dir'}"
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
            row: dict[str, Any] = {
                "variant": name,
                "format": fmt,
                "compression": comp,
                "local_compression": local_comp,
                "attempt": attempt,
                "load_before": loadavg(),
            }
            loc = f"s3://{bucket}/bench/{slug}-{attempt}/"
            argv = [VENV_BIN / "alembic-operator", "backup", "--location", loc, "--format", fmt]
            if comp is not None:
                argv += ["--compression", comp]

            def local() -> None:
                row["pg_dump_s"], row["pg_dump_cpu_s"] = timed_cpu(
                    [pg.tool("pg_dump"), *dump_args(fmt, local_comp), "-d", database, "-f", out], env=env
                )

            def product() -> None:
                row["operator_s"], row["operator_cpu_s"], peak = rss.timed(argv, env=step_env)
                row["operator_rss_bytes"], row["operator_python_rss_bytes"] = peak.tree, peak.python

            # Alternate which goes first, so a drift in the machine's load does not favour one side.
            order = (local, product) if (index + attempt) % 2 == 0 else (product, local)
            row["order"] = [f.__name__ for f in order]
            for step in order:
                quiesce(pg)
                step()
            row["local_bytes"] = _du(out)
            manifest = json.loads(
                b.s3.client().get_object(Bucket=bucket, Key=f"bench/{slug}-{attempt}/manifest.json")["Body"].read()
            )
            row["s3_bytes"] = int(manifest["sizeBytes"])
            row["operator_inner_s"] = manifest.get("durationSeconds")
            row["codec"] = manifest.get("codec")
            row["location"] = loc
            row["binding"] = binding_args(bucket, manifest)
            if fmt == "custom":
                shell = (
                    f"set -o pipefail; '{pg.tool('pg_dump')}' {' '.join(dump_args(fmt, local_comp))} -d {database} "
                    f"| '{VENV_BIN / 'python'}' -m bench.recipe {bucket} recipe/{slug}-{attempt}.dump"
                )
                quiesce(pg)
                row["recipe_s"], row["recipe_cpu_s"] = timed_cpu(
                    shell,
                    shell=True,
                    env={
                        **step_env,
                        **{k: v for k, v in env.items() if k.startswith("PG")},
                        "PYTHONPATH": str(Path(__file__).parents[1]),
                    },
                )
            row["local_path"] = str(out)
            row["ratio_vs_pg_dump"] = ratio(row["operator_s"], row["pg_dump_s"])
            if "recipe_s" in row:
                row["ratio_vs_recipe"] = ratio(row["operator_s"], row["recipe_s"])
            row["pg_dump_MBps"] = round(db_bytes / MB / row["pg_dump_s"], 1)
            row["operator_MBps"] = round(db_bytes / MB / row["operator_s"], 1)
            results.append(row)
            say(
                f"  backup {name}: pg_dump {row['pg_dump_s']:.1f}s, operator {row['operator_s']:.1f}s "
                f"(×{row['ratio_vs_pg_dump']:.2f})" + (f", recipe {row['recipe_s']:.1f}s" if "recipe_s" in row else "")
            )
    return {"rows": results}


def backup_table(data: dict[str, Any], db_bytes: int) -> str:
    rows = []
    for r in data["rows"]:
        rows.append(
            [
                r["variant"],
                f"{r['local_bytes'] / MB:,.0f}",
                f"{r['pg_dump_s']:.1f} ({r['pg_dump_cpu_s']:.1f})",
                f"{r['recipe_s']:.1f}" if "recipe_s" in r else "—",
                f"{r['operator_s']:.1f} ({r['operator_cpu_s']:.1f})",
                f"{db_bytes / MB / r['pg_dump_s']:.0f} / {db_bytes / MB / r['operator_s']:.0f}",
                f"**{r['ratio_vs_pg_dump']:.2f}**",
                f"{ratio(r['operator_cpu_s'], r['pg_dump_cpu_s']):.2f}",
                f"{r['ratio_vs_recipe']:.2f}" if "ratio_vs_recipe" in r else "—",
                f"{r['s3_bytes'] / MB:,.0f}",
                rss.mib(r.get("operator_rss_bytes"), r.get("operator_python_rss_bytes")),
            ]
        )
    return table(
        f"Backup of a {db_bytes / MB:,.0f} MB database — wall seconds (client CPU seconds)",
        [
            "variant",
            "dump MB",
            "pg_dump → local file",
            "pg_dump piped to boto3 → S3 (the recipe)",
            "alembic-operator backup → S3",
            "DB MB/s (pg_dump / operator)",
            "operator ÷ pg_dump, wall",
            "… client CPU",
            "operator ÷ recipe, wall",
            "object MB (S3)",
            "operator peak RSS MiB, tree (Python)",
        ],
        rows,
    )


def restore_args(location: str, binding: Sequence[str] = ()) -> list[str]:
    """The restore step's arguments as every benchmark runs it: into a fresh database (not the one
    backed up), discarding whatever it holds; ``binding`` as the operator passes it (:func:`binding_args`)."""
    return ["--location", location, *binding, "--allow-other-database", "--on-foreign-writes", "restore"]


def binding_args(bucket: str, doc: dict[str, Any]) -> list[str]:
    """What the operator binds a restore to, from the run's status (which the backup's result filled, from
    this manifest): the dump, its SHA-256 and, when listed, its chunk list's digest (the restore then streams)."""
    args = ["--backup-uri", f"s3://{bucket}/{doc['key']}", "--backup-sha256", str(doc["sha256"])]
    chunks = doc.get("chunks")
    if isinstance(chunks, dict):
        args += ["--backup-chunks-sha256", storage_manifest.chunk_list_sha256(chunks["sha256"])]
    return args


def quiesce(pg: Any) -> None:
    """A checkpoint, then the page cache written back: the next timed command pays for no one's writes."""
    pg.execute("CHECKPOINT")
    os.sync()


def run_restore(b: Bed, *, backups: dict[str, Any], db_bytes: int, repeat: int = 1) -> dict[str, Any]:
    pg, env = b.pg, b.pg.env()
    by_variant = {r["variant"]: r for r in backups["rows"] if r["attempt"] == 0}
    results: list[dict[str, Any]] = []
    counter = 0

    def fresh() -> str:
        nonlocal counter
        counter += 1
        return pg.create_database(f"restore_{counter}")

    for name, plain_from in RESTORE_FROM:
        src, local = by_variant.get(name), by_variant.get(plain_from)
        if src is None or local is None:
            continue
        for attempt in range(repeat):
            row: dict[str, Any] = {
                "source": name,
                "dump_bytes": src["s3_bytes"],
                "plain_from": plain_from,
                "attempt": attempt,
                "load_before": loadavg(),
            }

            def product() -> None:
                db = fresh()
                row["operator_s"], row["operator_cpu_s"], peak = rss.timed(
                    [VENV_BIN / "alembic-operator", "restore", *restore_args(src["location"], src.get("binding", ()))],
                    env={**b.step_env(pg.url(db))},
                )
                row["operator_rss_bytes"], row["operator_python_rss_bytes"] = peak.tree, peak.python
                pg.drop_database(db)

            def plain(key: str, extra: list[str]) -> None:
                db = fresh()
                row[key], row[key.replace("_s", "_cpu_s")] = timed_cpu(
                    [pg.tool("pg_restore"), "-w", "--no-owner", *extra, "-d", db, local["local_path"]], env=env
                )
                pg.drop_database(db)

            # pg_restore and the product back to back, which goes first alternating (as the backups do),
            # then the other plain variants. Each starts from a flushed server and page cache: a 1 GB load
            # leaves ~2 GB of data and WAL to write back, which slowed whichever restore came next.
            pair = [("pg_restore", lambda: plain("pg_restore_s", [])), ("operator", product)]
            pair = pair if attempt % 2 == 0 else pair[::-1]
            row["order"] = [who for who, _ in pair]
            others = [lambda: plain("pg_restore_1tx_s", ["-1"]), lambda: plain("pg_restore_j2_s", ["-j2"])]
            for step in [run for _, run in pair] + others:
                quiesce(pg)
                step()
            row["ratio_vs_pg_restore"] = ratio(row["operator_s"], row["pg_restore_s"])
            row["ratio_vs_pg_restore_1tx"] = ratio(row["operator_s"], row["pg_restore_1tx_s"])
            row["ratio_vs_pg_restore_j2"] = ratio(row["operator_s"], row["pg_restore_j2_s"])
            results.append(row)
            say(
                f"  restore from {name}: pg_restore {row['pg_restore_s']:.1f}s (-j2 {row['pg_restore_j2_s']:.1f}s, "
                f"1tx {row['pg_restore_1tx_s']:.1f}s), operator {row['operator_s']:.1f}s "
                f"(×{row['ratio_vs_pg_restore']:.2f})"
            )
    return {"rows": results}


def restore_table(data: dict[str, Any], db_bytes: int) -> str:
    rows = []
    for r in data["rows"]:
        rows.append(
            [
                r["source"]
                + (f" (pg_restore from {r['plain_from']})" if r.get("plain_from", r["source"]) != r["source"] else ""),
                f"{r['dump_bytes'] / MB:,.0f}",
                f"{r['pg_restore_s']:.1f}",
                f"{r['pg_restore_j2_s']:.1f}",
                f"{r['pg_restore_1tx_s']:.1f}",
                f"{r['operator_s']:.1f} ({r['operator_cpu_s']:.1f})",
                f"**{r['ratio_vs_pg_restore']:.2f}**",
                f"{r['ratio_vs_pg_restore_j2']:.2f}",
                f"{r['ratio_vs_pg_restore_1tx']:.2f}",
                rss.mib(r.get("operator_rss_bytes"), r.get("operator_python_rss_bytes")),
            ]
        )
    return table(
        f"Restore of the {db_bytes / MB:,.0f} MB database into an empty one — wall seconds (client CPU seconds)",
        [
            "from dump",
            "dump MB",
            "pg_restore -d (local file)",
            "pg_restore -j2",
            "pg_restore --single-transaction",
            "alembic-operator restore (S3)",
            "operator ÷ pg_restore",
            "÷ -j2",
            "÷ single-tx",
            "operator peak RSS MiB, tree (Python)",
        ],
        rows,
    )
