"""Load a pg_dump archive into a database in ONE transaction: all restored or nothing changed.

One psql session (``ON_ERROR_STOP=1``) is fed, by this process:

1. ``BEGIN;`` and a preamble (full restore: drop every non-system schema,
   recreate ``public`` as initdb makes it, unlink large objects; so objects a
   failed migration created are gone too — ``pg_restore --clean`` would
   keep them);
2. the SQL script ``pg_restore -f -`` makes of the archive, written by
   pg_restore straight into psql's stdin (the same pipe; no copy through
   this process);
3. a guard that raises inside the transaction when any restored table's
   row count differs from the manifest;
4. ``COMMIT;`` — written only after pg_restore exited 0 and the caller's
   check of the bytes (SHA-256 of the stream) passed. On any failure psql is
   killed before it sees COMMIT, so the server rolls everything back.

pg_restore and psql must be of the server's major (see :mod:`alembic_operator.job.database.pgtools`).
Must not: decide what to restore (the restore step does) or talk to S3.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import IO

from alembic_operator.api import errors, redact
from alembic_operator.job.database import pgtools, postgres, urls

CHUNK = 1024 * 1024


def preamble_full(*, schemas: list[str], server_major: int) -> str:
    """SQL that empties the database: every application schema dropped, ``public`` recreated bare."""
    lines = ["SET client_min_messages = warning;"]
    lines += [f"DROP SCHEMA IF EXISTS {postgres.quote_ident(s)} CASCADE;" for s in sorted(schemas)]
    lines.append("SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;")
    if server_major >= 15:
        lines += ["CREATE SCHEMA public AUTHORIZATION pg_database_owner;", "GRANT USAGE ON SCHEMA public TO PUBLIC;"]
    else:
        lines += ["CREATE SCHEMA public;", "GRANT ALL ON SCHEMA public TO PUBLIC;"]
    lines += ["COMMENT ON SCHEMA public IS 'standard public schema';", "RESET client_min_messages;", ""]
    return "\n".join(lines)


def preamble_tables(*, existing: list[str]) -> str:
    """SQL that empties the chosen tables that exist (the archive's data then refills them)."""
    if not existing:
        return ""
    names = ", ".join(postgres.qualified(*t.split(".", 1)) for t in sorted(existing))
    return f"TRUNCATE ONLY {names};\n"


def count_guard(*, expected: dict[str, int]) -> str:
    """A DO block that aborts the transaction naming the first table whose count differs."""
    if not expected:
        return ""
    body = ["DO $alembic_operator$ DECLARE n bigint; BEGIN"]
    for table, rows in sorted(expected.items()):
        schema, name = table.split(".", 1)
        lit = table.replace("'", "''")
        body.append(
            f"  IF to_regclass('{postgres.qualified(schema, name).replace(chr(39), chr(39) * 2)}') IS NULL "
            f"THEN RAISE EXCEPTION 'row count check: % is missing', '{lit}'; END IF;"
        )
        body.append(f"  SELECT count(*) INTO n FROM {postgres.qualified(schema, name)};")
        body.append(
            f"  IF n <> {int(rows)} THEN RAISE EXCEPTION 'row count check: % has % rows, expected %', "
            f"'{lit}', n, {int(rows)}; END IF;"
        )
    body.append("END $alembic_operator$;")
    return "\n".join(body) + "\n"


def rolled_back(message: str) -> errors.RestoreFailed:
    """A RestoreFailed that says the transaction rolled back, so the database did not change."""
    exc = errors.RestoreFailed(message, rolledBack=True)
    exc.changed_database = False
    return exc


def _first_error(handle: IO[bytes], limit: int = 400) -> str:
    handle.seek(0)
    lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    for line in lines:
        if "ERROR:" in line or "error:" in line or "FATAL:" in line:
            return redact.redact(line.split("ERROR:", 1)[-1].strip() if "ERROR:" in line else line)[:limit]
    return redact.redact(lines[-1])[:limit] if lines else "no message"


def load(
    *,
    url: urls.DatabaseURL,
    database: str | None,
    restore_tool: pgtools.Tool,
    psql_tool: pgtools.Tool,
    sections: list[tuple[str, list[str]]],
    feed: Iterable[bytes] | None,
    guard_sql: str,
    accept: Callable[[], None],
) -> None:
    """Run the transaction described in the module docstring.

    ``sections`` is a list of (SQL to send first, pg_restore arguments); each
    pg_restore's script follows its SQL. ``feed`` (only with one section)
    is piped into that pg_restore's stdin (a streamed custom archive).
    ``accept`` runs after every pg_restore succeeded and before COMMIT; it
    raises to refuse (e.g. the streamed bytes' SHA-256 differs).
    """
    conninfo, env = pgtools.libpq_env(url=url, database=database)
    psql_argv = [psql_tool.path, "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", "-"]
    with tempfile.TemporaryFile() as psql_err, tempfile.TemporaryFile() as restore_err:
        psql = subprocess.Popen(psql_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=env)
        assert psql.stdin is not None
        committed = False
        try:
            psql.stdin.write(b"BEGIN;\n")
            for sql, restore_args in sections:
                psql.stdin.write(sql.encode())
                _pipe_restore(
                    argv=[restore_tool.path, "-f", "-", *restore_args],
                    feed=feed,
                    env=env,
                    into=psql.stdin,
                    err=restore_err,
                    reader=psql,
                )
            accept()
            psql.stdin.write(guard_sql.encode() + b"COMMIT;\n")
            psql.stdin.close()
            committed = True
        except BrokenPipeError:
            pass  # psql stopped on an error; its exit code and stderr say which
        except BaseException:
            psql.kill()
            psql.wait()
            raise
        finally:
            if not committed:
                psql.kill()  # never let psql see EOF (it would commit): kill it, the server rolls back
        code = psql.wait()
        if not committed or code != 0:
            raise rolled_back(f"restore rolled back, the database is unchanged: {_first_error(psql_err)}")


def _pipe_restore(
    *,
    argv: list[str],
    feed: Iterable[bytes] | None,
    env: dict[str, str],
    into: IO[bytes],
    err: IO[bytes],
    reader: subprocess.Popen[bytes] | None = None,
) -> None:
    """Have pg_restore write its script straight into psql's stdin; RestoreFailed if pg_restore fails.

    pg_restore's stdout *is* psql's stdin pipe (no copy through this process);
    this process keeps its own write end open, so psql sees no EOF (and never
    COMMIT) until :func:`load` writes the guard and COMMIT after pg_restore
    exited 0 — or kills psql.
    """
    into.flush()  # BEGIN and the section's SQL must reach psql before pg_restore's script
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
        stdout=into.fileno(),
        stderr=err,
        env=env,
    )
    failure: list[BaseException] = []

    def pump() -> None:
        assert proc.stdin is not None and feed is not None
        try:
            for chunk in feed:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped reading; its exit code says why
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
            proc.kill()
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    feeder = threading.Thread(target=pump, name="restore-feed", daemon=True) if feed is not None else None
    if feeder:
        feeder.start()
    try:
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if feeder:
            feeder.join()
    if failure:
        raise failure[0]
    if code != 0:
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
        if reader is not None and (code == -13 or any("could not write" in ln or "Broken pipe" in ln for ln in lines)):
            # psql closed its stdin: it stopped on an SQL error, which its stderr names better.
            with contextlib.suppress(subprocess.TimeoutExpired):
                reader.wait(timeout=5)
            if reader.poll() is not None:
                raise BrokenPipeError("psql stopped reading")
        raise rolled_back(
            f"pg_restore exited with {code}, nothing was restored: "
            f"{redact.redact(lines[-1] if lines else 'no message')[:300]}"
        )
