"""The SQL around a restore: emptying the database, the in-transaction count guard, pg_dump argv."""

from __future__ import annotations

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import dumping, guarding, identifiers, loading, pgtools

HOSTILE = ('we.i"rd', "x'$$$alembic_operator$ $f$ \\! touch /tmp/pwned")


def test_the_full_preamble_finds_the_schemas_on_the_server_and_recreates_public() -> None:
    sql = loading.preamble_full(server_major=15)
    assert "EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', s);" in sql  # names quoted by the server
    assert "CREATE SCHEMA public AUTHORIZATION pg_database_owner;" in sql
    assert "lo_unlink" in sql
    assert "BEGIN;" not in sql and "COMMIT" not in sql  # the caller owns the transaction


def test_before_15_public_is_recreated_with_the_old_defaults() -> None:
    sql = loading.preamble_full(server_major=14)
    assert "GRANT ALL ON SCHEMA public TO PUBLIC;" in sql and "pg_database_owner" not in sql


def _hex_only(sql: str) -> None:
    """Between the hex literal's quotes there is nothing but hex digits; no name reaches the text."""
    literal = sql.split("decode('", 1)[1].split("'", 1)[0]
    assert set(literal) <= set("0123456789abcdef")
    assert "$$" not in sql and "\\" not in sql and "pwned" not in sql


def test_table_names_reach_psql_only_as_hex() -> None:
    sql = loading.preamble_tables(tables=[HOSTILE, ("public", "task")])
    off, truncate = sql.splitlines()
    assert off.startswith("SELECT pg_temp.alembic_operator_triggers_off(")  # user triggers off, then empty
    assert truncate.startswith("SELECT pg_temp.alembic_operator_truncate(")
    _hex_only(off)
    _hex_only(truncate)
    assert loading.preamble_tables(tables=[]) == ""
    guard = guarding.count_guard(expected={identifiers.label(*HOSTILE): 2, "public.task": None})
    _hex_only(guard)
    assert guarding.count_guard(expected={}) == ""


def test_the_gate_is_armed_in_begin_and_opened_only_by_commit() -> None:
    token = "ab" * 16
    begin = loading.begin(lock_timeout_ms=1500, token=token)
    assert begin.startswith("BEGIN;") and "SET LOCAL lock_timeout = '1500ms';" in begin
    assert "DEFERRABLE INITIALLY DEFERRED" in begin and "COMMIT" not in begin.replace("ON COMMIT DROP", "")
    assert loading.commit(token=token).endswith(f"'{token}', true);\nCOMMIT;\n")
    with pytest.raises(ValueError):
        loading.begin(lock_timeout_ms=1, token="x'; \\! id")


def test_the_script_filter_removes_only_the_final_commit() -> None:
    body = b"BEGIN;\nCOPY t FROM stdin;\nCOMMIT;\n\\.\n" * 2000
    trailer = b"\nCOMMIT;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k1\n\n"
    for size in (999, 4096, 65536):  # chunks below, at and above the held tail
        f = loading.ScriptFilter(key="k1")
        out = b"".join(
            bytes(piece) for i in range(0, len(body), size) for piece in f.feed(memoryview(body)[i : i + size])
        )
        out += b"".join(bytes(piece) for piece in f.feed(trailer)) + f.finish()
        assert out == body + trailer.replace(b"\nCOMMIT;\n", b"\n", 1)
    bad = loading.ScriptFilter(key="k1")
    bad.feed(body + b"\nCOMMIT;\nSELECT 1;\n\\unrestrict k1\n\n")
    with pytest.raises(errors.RestoreFailed):
        bad.finish()


def test_a_rolled_back_restore_says_the_database_did_not_change() -> None:
    exc = loading.rolled_back("boom")
    assert exc.changed_database is False and exc.details == {"rolledBack": True}


def test_pg_dump_argv_uses_the_snapshot_and_never_the_password() -> None:
    tool = pgtools.Tool(name="pg_dump", path="/pg/bin/pg_dump", version="15.18", major=15)
    argv = dumping.dump_argv(
        tool=tool, conninfo="postgresql://app@db:5432/shop", snapshot="00000003-1", fmt="custom", compression="gzip:1"
    )
    assert argv == [
        "/pg/bin/pg_dump",
        "-w",
        "--format=custom",
        "-d",
        "postgresql://app@db:5432/shop",
        "--snapshot=00000003-1",
        "--compress=gzip:1",
    ]
    argv = dumping.dump_argv(
        tool=tool, conninfo="c", snapshot=None, fmt="directory", compression=None, jobs=4, output="/tmp/x/dump"
    )
    assert argv[-2:] == ["--jobs=4", "--file=/tmp/x/dump"] and "--compress" not in " ".join(argv)


def test_hashing_reads_in_any_piece_size_and_hashes_everything() -> None:
    import hashlib

    from alembic_operator.job.storage import archives

    chunks = [bytes([i]) * (1000 + i) for i in range(50)]
    whole = b"".join(chunks)
    reader = archives.Hashing(iter(chunks))
    got = bytearray()
    while piece := reader.read(777):
        got += piece
    assert bytes(got) == whole and reader.size == len(whole)
    assert reader.sha256.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert b"".join(archives.Hashing(iter(chunks))) == whole
