"""Load a pg_dump archive into a database in ONE transaction: all restored or nothing changed.

One psql session (``ON_ERROR_STOP=1``) is fed, by this process:

1. ``BEGIN;``, a lock limit (``SET LOCAL lock_timeout``: every lock the restore
   can wait for is taken here, by the preamble's DROP SCHEMA / TRUNCATE; the
   objects the script creates are new and invisible to everyone else), the
   commit gate (below), and a preamble: full restore: clear the objects that
   live outside schemas (:mod:`alembic_operator.job.database.database_state`), remember the
   sequences' values (:mod:`alembic_operator.job.database.sequences`), drop every non-system
   schema, recreate ``public`` as initdb makes it, unlink large objects;
   table restore: empty the chosen tables;
2. the SQL script ``pg_restore --single-transaction --restrict-key=K -f -``
   makes of the archive, passed through :class:`ScriptFilter`;
3. a guard that raises inside the transaction when any restored table's
   row count differs from the manifest, and (full restore) every sequence
   set to the larger of its dump and its earlier value, the database-level
   state put back and compared with the manifest's;
4. the gate's token and ``COMMIT;`` — written only after pg_restore exited 0
   and the caller's check of the bytes (SHA-256 of the stream) passed. On any
   failure psql is killed before it sees COMMIT, so the server rolls back.

**Nothing commits early, by construction.** The script may carry transaction
control: without ``--single-transaction`` pg_restore wraps large objects in
``BEGIN;``/``COMMIT;``; with it, there is one ``BEGIN;`` at the top (a no-op
warning inside our transaction) and one ``COMMIT;`` at the very end, which
:class:`ScriptFilter` removes (it checks that only pg_restore's fixed trailer
follows it, else the restore fails). And whatever commits anyway meets the
gate: a deferred constraint trigger on a temporary table raises at COMMIT
unless the session holds a random per-restore token that only step 4 sets.

**psql is fed nothing a backslash command could hide in.** Names never reach
psql as text: the preamble finds schemas on the server, and tables for the
truncate and the guard travel as hex-encoded JSON
(:func:`alembic_operator.job.database.identifiers.payload`) decoded and quoted
on the server (``format('%I.%I')``); every other byte of our own SQL is fixed
text here. pg_restore's script quotes names itself, and runs in psql's
restricted mode (``\\restrict`` with a random key per pg_restore, PostgreSQL
15.14+/16.10+/17.6+/18): a meta-command in it is refused, not run. A filter
parsing pg_restore's output would have to re-implement psql's lexer (quotes,
dollar quotes, COPY data) to tell script lines from data; psql variables or
``\\set`` switches would not stop ``\\!``.

pg_restore and psql must be of the server's major (see :mod:`alembic_operator.job.database.pgtools`).
Must not: decide what to restore (the restore step does) or talk to S3.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import IO

from alembic_operator.api import errors, redact
from alembic_operator.job import progress
from alembic_operator.job.database import database_state, guarding, identifiers, pgtools, scope, sequences, urls

CHUNK = 1024 * 1024
#: Bytes of pg_restore's output held back until its end (the trailer after the final COMMIT).
TAIL = 4096

#: How long the restore waits for a lock another session holds (``--lock-timeout-seconds``).
DEFAULT_LOCK_TIMEOUT_MS = 60_000

#: The session setting the gate checks; step 4 sets it to the token, nothing else knows the token.
GATE_SETTING = "alembic_operator.restore_gate"


_SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

#: Fixed functions the transaction uses; names arrive as jsonb arguments, never as text here.
_HELPERS = """
CREATE FUNCTION pg_temp.alembic_operator_truncate(tables jsonb) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE names text;
BEGIN
  SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', x->>0, x->>1), ', ') INTO names
  FROM pg_catalog.jsonb_array_elements(tables) x
  WHERE pg_catalog.to_regclass(pg_catalog.format('%I.%I', x->>0, x->>1)) IS NOT NULL;
  IF names IS NOT NULL THEN
    EXECUTE 'TRUNCATE ONLY ' || names;  -- one statement: tables referencing each other may go together
  END IF;
END $f$;
CREATE FUNCTION pg_temp.alembic_operator_triggers_off(tables jsonb) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE item jsonb;
BEGIN
  CREATE TEMPORARY TABLE alembic_operator_triggers ON COMMIT DROP AS
    SELECT t.tgrelid, t.tgname, t.tgenabled FROM pg_catalog.pg_trigger t
    WHERE NOT t.tgisinternal AND t.tgrelid IN (
      SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', x->>0, x->>1))
      FROM pg_catalog.jsonb_array_elements(tables) x);
  FOR item IN SELECT * FROM pg_catalog.jsonb_array_elements(tables) LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', item->>0, item->>1)) IS NOT NULL THEN
      EXECUTE pg_catalog.format('ALTER TABLE %I.%I DISABLE TRIGGER USER', item->>0, item->>1);
    END IF;
  END LOOP;
END $f$;
CREATE FUNCTION pg_temp.alembic_operator_triggers_back() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_temp.alembic_operator_triggers LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s %s TRIGGER %I', r.tgrelid::pg_catalog.regclass,
      CASE r.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' WHEN 'A' THEN 'ENABLE ALWAYS'
                       ELSE 'ENABLE' END, r.tgname);
  END LOOP;
END $f$;
"""


def begin(*, lock_timeout_ms: int, token: str) -> str:
    """BEGIN, the lock limit, the helpers and the commit gate (see module docstring)."""
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        raise ValueError("the gate token must be 32 hex digits")
    return f"""BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms';
{_HELPERS}
{guarding.HELPERS_SQL}
{database_state.HELPERS_SQL}
{scope.HELPERS_SQL}
{sequences.HELPERS_SQL}
CREATE TEMPORARY TABLE alembic_operator_gate (armed boolean) ON COMMIT DROP;
CREATE FUNCTION pg_temp.alembic_operator_gate() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF pg_catalog.current_setting('{GATE_SETTING}', true) IS DISTINCT FROM '{token}' THEN
    RAISE EXCEPTION 'the restore script tried to commit before the restore was complete; everything was rolled back';
  END IF;
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER alembic_operator_gate AFTER INSERT ON pg_temp.alembic_operator_gate
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.alembic_operator_gate();
INSERT INTO pg_temp.alembic_operator_gate VALUES (true);
"""


def commit(*, token: str) -> str:
    """Open the gate and COMMIT: the only statement that may end the transaction."""
    return f"SELECT pg_catalog.set_config('{GATE_SETTING}', '{token}', true);\nCOMMIT;\n"


def preamble_full(*, server_major: int, scope: dict[str, list[str]] | None = None) -> str:
    """SQL that empties the database: every application schema dropped (found on the server), ``public`` bare.

    With ``scope`` (``{"scope": [...], "recorded": [...]}``, a scoped backup: see
    :mod:`alembic_operator.job.database.scope`) only the scope's schemas and those absent from
    ``recorded`` (created since the backup) are dropped; nothing outside schemas is cleared.
    """
    if scope is not None:  # a dump limited to schemas (pg_dump -n) creates each of them, public too
        return f"{sequences.REMEMBER}\nSELECT pg_temp.alembic_operator_drop_scope({identifiers.payload(scope)});\n"
    lines = [
        sequences.REMEMBER,
        "SELECT pg_temp.alembic_operator_clear_database_objects();",
        "DO $f$ DECLARE s name; BEGIN",
        f"  FOR s IN SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {_SYSTEM_SCHEMAS} ORDER BY 1 LOOP",
        "    EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', s);",
        "  END LOOP;",
        "END $f$;",
        "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;",
    ]
    if server_major >= 15:
        lines += ["CREATE SCHEMA public AUTHORIZATION pg_database_owner;", "GRANT USAGE ON SCHEMA public TO PUBLIC;"]
    else:
        lines += ["CREATE SCHEMA public;", "GRANT ALL ON SCHEMA public TO PUBLIC;"]
    lines += ["COMMENT ON SCHEMA public IS 'standard public schema';", ""]
    return "\n".join(lines)


def preamble_tables(*, tables: list[identifiers.Table]) -> str:
    """SQL that switches off the user triggers of those of ``tables`` that exist (an ON TRUNCATE or
    ON INSERT trigger would rewrite rows or write to other tables) and empties them (the archive's
    data then refills them); :data:`TRIGGERS_BACK` puts each trigger's state back before COMMIT."""
    if not tables:
        return ""
    names = identifiers.payload([list(t) for t in tables])
    return (
        f"SELECT pg_temp.alembic_operator_triggers_off({names});\nSELECT pg_temp.alembic_operator_truncate({names});\n"
    )


#: After a table restore's data: every trigger switched off goes back to its state (enabled, replica, always).
TRIGGERS_BACK = "SELECT pg_temp.alembic_operator_triggers_back();\n"


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


class ScriptFilter:
    """Pass pg_restore's script through, removing its final ``COMMIT;`` (``--single-transaction``).

    Holds back the last :data:`TAIL` bytes; at the end the held bytes must hold
    ``COMMIT;`` followed only by pg_restore's fixed trailer (comment lines, blank
    lines and ``\\unrestrict KEY``), else the restore fails: a script this module
    does not recognise is not committed.
    """

    def __init__(self, *, key: str) -> None:
        self._held = b""
        self._trailer = re.compile(
            rb"\nCOMMIT;\n((?:--[^\n]*\n|\n)*)(\\unrestrict " + re.escape(key.encode()) + rb"\n(?:\n)*)\Z"
        )

    def feed(self, chunk: bytes | memoryview) -> list[bytes | memoryview]:
        """The pieces to pass on now (write them in order before the next ``feed``: a memoryview
        piece is a view of ``chunk``). A chunk of a script is not copied: it was 0.8 s of CPU per GiB."""
        if len(chunk) >= TAIL:
            pieces: list[bytes | memoryview] = [self._held, memoryview(chunk)[:-TAIL]]
            self._held = bytes(chunk[-TAIL:])
            return pieces
        data = self._held + bytes(chunk)
        cut = max(0, len(data) - TAIL)
        self._held = data[cut:]
        return [data[:cut]]

    def finish(self) -> bytes:
        match = self._trailer.search(self._held)
        if match is None:
            raise rolled_back(
                "pg_restore's script does not end as expected (COMMIT, then its trailer); restore rolled back"
            )
        return self._held[: match.start()] + b"\n" + match.group(1) + match.group(2)


def load(
    *,
    url: urls.DatabaseURL,
    database: str | None,
    restore_tool: pgtools.Tool,
    psql_tool: pgtools.Tool,
    sections: list[tuple[str, list[str]]],
    feed: Iterable[bytes | memoryview] | None,
    guard_sql: str,
    accept: Callable[[], None],
    lock_timeout_ms: int,
) -> guarding.Counted | None:
    """Run the transaction described in the module docstring; return the counts a
    ``guarding.count_guard(count_all=True)`` in ``guard_sql`` took before COMMIT (else None).

    ``sections`` is a list of (SQL to send first, pg_restore arguments); each
    pg_restore's script follows its SQL. ``feed`` is piped into the last
    section's pg_restore's stdin (a streamed custom archive).
    ``accept`` runs after every pg_restore succeeded and before COMMIT; it
    raises to refuse (e.g. the streamed bytes' SHA-256 differs).
    """
    conninfo, env = pgtools.libpq_env(url=url, database=database)
    # -A -t: a query's result is its bare text, one line a row (the guard's counts are one such line)
    psql_argv = [psql_tool.path, "-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", "-"]
    token = secrets.token_hex(16)
    marker = secrets.token_hex(16)
    with (
        tempfile.TemporaryFile() as psql_out,
        tempfile.TemporaryFile() as psql_err,
        tempfile.TemporaryFile() as restore_err,
    ):
        psql = subprocess.Popen(psql_argv, stdin=subprocess.PIPE, stdout=psql_out, stderr=psql_err, env=env)
        assert psql.stdin is not None
        committed = False
        try:
            psql.stdin.write(begin(lock_timeout_ms=lock_timeout_ms, token=token).encode())
            for index, (sql, restore_args) in enumerate(sections):
                psql.stdin.write(sql.encode())
                key = secrets.token_hex(16)
                _pipe_restore(
                    argv=[restore_tool.path, "--single-transaction", f"--restrict-key={key}", "-f", "-", *restore_args],
                    feed=feed if index == len(sections) - 1 else None,
                    env=env,
                    into=psql.stdin,
                    script=ScriptFilter(key=key),
                    err=restore_err,
                    reader=psql,
                )
            accept()
            psql.stdin.write((guard_sql + guarding.report_sql(marker=marker) + commit(token=token)).encode())
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
            raise rolled_back(f"restore rolled back: {_first_error(psql_err)}")
        return guarding.read_counted(psql_out, marker=marker)


def _pipe_restore(
    *,
    argv: list[str],
    feed: Iterable[bytes | memoryview] | None,
    env: dict[str, str],
    into: IO[bytes],
    script: ScriptFilter,
    err: IO[bytes],
    reader: subprocess.Popen[bytes] | None = None,
) -> None:
    """Pass pg_restore's script into psql's stdin through ``script``; RestoreFailed if pg_restore fails.

    This process keeps psql's stdin open, so psql sees no EOF (and never
    COMMIT) until :func:`load` writes the guard and COMMIT after pg_restore
    exited 0 — or kills psql.
    """
    into.flush()  # BEGIN and the section's SQL must reach psql before pg_restore's script
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        env=env,
    )
    assert proc.stdout is not None
    failure: list[BaseException] = []

    def pump() -> None:
        assert proc.stdin is not None and feed is not None
        try:
            for chunk in feed:
                proc.stdin.write(chunk)
                progress.count("restore", len(chunk))  # served to the operator: job/progress.py
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
    buffer = bytearray(CHUNK)  # one buffer, read into again and again: no allocation per chunk
    view = memoryview(buffer)
    try:
        while size := os.readv(proc.stdout.fileno(), [buffer]):
            for piece in script.feed(view[:size]):
                into.write(piece)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        if feeder:
            feeder.join()
    if failure:
        raise failure[0]
    if code != 0:
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
        raise rolled_back(
            f"pg_restore exited with {code}, nothing was restored: "
            f"{redact.redact(lines[-1] if lines else 'no message')[:300]}"
        )
    into.write(script.finish())
