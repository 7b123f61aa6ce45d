"""``migrate --exec -- CMD...``: the app's own migrate command, run under the step's advisory lock.

Some apps migrate only through their own CLI (``flask db upgrade``, ``myapp
db upgrade``) that sets things up env.py alone cannot. The step still takes
the advisory lock, reads the revision before and after and fingerprints the
schema; the command runs as a child process with the run's URL in its
environment. What is known in this mode, and what is not:

* known: whether the database changed (version table, schema fingerprint),
  the revisions applied, the exit code; libpq-based drivers (psycopg,
  psycopg2) also get the run's ``application_name`` and ``lock_timeout``
  through ``PGAPPNAME`` / ``PGOPTIONS``;
* not known: the migration's own writes (they count as foreign, so a failed
  run with committed revisions is held if the app kept writing), which revision
  was running when it failed (the first one not applied is named), and for
  asyncpg or other non-libpq drivers the session's name and ``lock_timeout``.

Must not: interpret the command's output, or run it without the lock.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys

from alembic_operator.job.database import urls


class CommandFailed(Exception):
    """The wrapped command exited non-zero or could not start."""


def environment(*, url: urls.DatabaseURL, application: str, lock_timeout: str, url_env: str | None) -> dict[str, str]:
    """The child's environment: ours, plus the session settings libpq honours and the URL under the app's name."""
    env = dict(os.environ)
    env["PGAPPNAME"] = application
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c lock_timeout={lock_timeout}".strip()
    if url_env:
        env[url_env] = os.environ.get("DATABASE_URL") or url.libpq()
    return env


async def run(
    command: list[str], *, url: urls.DatabaseURL, application: str, lock_timeout: str, url_env: str | None
) -> None:
    """Run ``command`` to its end (its output goes to our stderr); CommandFailed unless it exits 0."""
    env = environment(url=url, application=application, lock_timeout=lock_timeout, url_env=url_env)
    try:
        proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=sys.stderr, stderr=sys.stderr)
    except OSError as exc:
        raise CommandFailed(f"cannot run {shlex.join(command)}: {exc.strerror or exc}") from None
    code = await proc.wait()
    if code != 0:
        raise CommandFailed(f"{shlex.join(command)} exited with {code}")
