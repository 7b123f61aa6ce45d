"""Run pg_dump into an S3 multipart upload (see :mod:`alembic_operator.job.storage.s3`).

1. custom format: pg_dump's stdout is read in 1 MiB chunks straight into the
   upload; nothing touches local disk and memory stays at a few parts.
2. directory format: ``pg_dump -Fd -j N`` writes a temporary directory (this
   one does use local disk, about the dump's size), which is then streamed
   to S3 as an uncompressed tar.

Both use ``--snapshot`` so the dump shows exactly the rows the caller counted.
Must not: complete the upload itself (the caller completes only after this
returns) or let a password reach argv or a message.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from typing import IO, Any

from alembic_operator.api import errors, redact
from alembic_operator.job import progress
from alembic_operator.job.database import pgtools, urls

CHUNK = 1024 * 1024
#: The archive root inside dump.tar.
TAR_ROOT = "dump"


def dump_argv(
    *,
    tool: pgtools.Tool,
    conninfo: str,
    snapshot: str | None,
    fmt: str,
    compression: str | None,
    jobs: int = 1,
    output: str | None = None,
    limit: list[str] | None = None,
) -> list[str]:
    """pg_dump's argv: never prompts (-w), never carries the password; ``limit``: the scope's
    ``--schema``/``--extension`` arguments (:mod:`alembic_operator.job.database.scope`)."""
    argv = [tool.path, "-w", f"--format={'custom' if fmt == 'custom' else 'directory'}", "-d", conninfo]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    if compression is not None:
        argv.append(f"--compress={compression}")
    if fmt == "directory":
        argv += [f"--jobs={jobs}", f"--file={output}"]
    return argv + list(limit or [])


def _stderr_tail(handle: IO[bytes], limit: int = 400) -> str:
    handle.seek(0)
    lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    text = lines[-1] if lines else "no message"
    for line in lines:  # pg_dump's first "error:" line names the cause best
        if "error:" in line:
            text = line
            break
    return redact.redact(text)[:limit]


def dump_custom(
    *,
    tool: pgtools.Tool,
    url: urls.DatabaseURL,
    snapshot: str | None,
    compression: str | None,
    sink: Any,
    limit: list[str] | None = None,
) -> None:
    """Stream ``pg_dump -Fc`` into ``sink.write``; BackupFailed if pg_dump fails or dies."""
    conninfo, env = pgtools.libpq_env(url=url)
    argv = dump_argv(
        tool=tool, conninfo=conninfo, snapshot=snapshot, fmt="custom", compression=compression, limit=limit
    )
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        try:
            while True:
                chunk = proc.stdout.read(CHUNK)
                if not chunk:
                    break
                sink.write(chunk)
                progress.count("backup", len(chunk))  # served to the operator: job/progress.py
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        code = proc.wait()
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            raise errors.BackupFailed(f"pg_dump {how}: {_stderr_tail(err)}")


def dump_directory(
    *,
    tool: pgtools.Tool,
    url: urls.DatabaseURL,
    snapshot: str | None,
    compression: str | None,
    jobs: int,
    sink: Any,
    workdir: str | None = None,
    limit: list[str] | None = None,
) -> None:
    """``pg_dump -Fd -j N`` into a temp dir, then a tar stream into ``sink``."""
    conninfo, env = pgtools.libpq_env(url=url)
    with tempfile.TemporaryDirectory(prefix="alembic-operator-dump-", dir=workdir) as tmp:
        out = os.path.join(tmp, TAR_ROOT)
        argv = dump_argv(
            tool=tool,
            conninfo=conninfo,
            snapshot=snapshot,
            fmt="directory",
            compression=compression,
            jobs=jobs,
            output=out,
            limit=limit,
        )
        with tempfile.TemporaryFile() as err:
            code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=err, env=env).returncode
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
                raise errors.BackupFailed(f"pg_dump {how}: {_stderr_tail(err)}")
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as tar:
            tar.add(out, arcname=TAR_ROOT)
