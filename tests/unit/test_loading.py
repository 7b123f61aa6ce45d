"""The SQL around a restore: emptying the database, the in-transaction count guard, pg_dump argv."""

from __future__ import annotations

from alembic_operator.job.database import dumping, loading, pgtools


def test_the_full_preamble_drops_every_application_schema_and_recreates_public() -> None:
    sql = loading.preamble_full(schemas=["public", "audit", 'we"ird'], server_major=15)
    assert 'DROP SCHEMA IF EXISTS "audit" CASCADE;' in sql
    assert 'DROP SCHEMA IF EXISTS "we""ird" CASCADE;' in sql
    assert "CREATE SCHEMA public AUTHORIZATION pg_database_owner;" in sql
    assert "lo_unlink" in sql
    assert "BEGIN" not in sql and "COMMIT" not in sql  # the caller owns the transaction


def test_before_15_public_is_recreated_with_the_old_defaults() -> None:
    sql = loading.preamble_full(schemas=["public"], server_major=14)
    assert "GRANT ALL ON SCHEMA public TO PUBLIC;" in sql and "pg_database_owner" not in sql


def test_a_table_restore_truncates_only_the_chosen_existing_tables() -> None:
    assert loading.preamble_tables(existing=["public.task", "audit.comment"]) == (
        'TRUNCATE ONLY "audit"."comment", "public"."task";\n'
    )
    assert loading.preamble_tables(existing=[]) == ""


def test_the_guard_raises_inside_the_transaction_naming_the_table() -> None:
    sql = loading.count_guard(expected={"public.task": 3000, "audit.o'brien": 2})
    assert "IF n <> 3000 THEN RAISE EXCEPTION 'row count check: % has % rows, expected %', 'public.task'" in sql
    assert "'audit.o''brien'" in sql
    assert sql.startswith("DO $alembic_operator$") and sql.rstrip().endswith("END $alembic_operator$;")
    assert loading.count_guard(expected={}) == ""


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
