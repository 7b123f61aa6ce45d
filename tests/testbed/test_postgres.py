"""The PostgreSQL servers of the test bed behave like the real ones the product meets.

These pin down what the product's backup/restore steps rely on: each major's
own pg_dump/pg_restore round-trip data exactly, URLs carry a password that is
really checked, a restart keeps committed data, and the cross-version
``transaction_timeout`` pitfall is real (so the product must pick client tools
of the server's major version).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from testbed.postgres import PostgresServer
from testbed.pytest_data import Database

ROWS = 3000

SEED_SQL = f"""
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    price numeric(12, 2) NOT NULL,
    created timestamptz NOT NULL,
    attrs jsonb NOT NULL,
    note text
);
INSERT INTO items (sku, price, created, attrs, note)
SELECT 'sku-' || g,
       (g * 1.37)::numeric(12, 2),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a' || (g % 7), 'b' || (g % 11)),
                          'nested', jsonb_build_object('even', g % 2 = 0, 'unicode', 'ü€' || g)),
       CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 40) || E'\\ttab ''quote''' END
FROM generate_series(1, {ROWS}) AS g;
"""

# A digest of every row in key order: catches changed values, not just lost rows.
DIGEST_SQL = "SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM items AS t"


def run_tool(server: PostgresServer, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a client tool of ``server``'s major version, password via the environment."""
    return subprocess.run(
        [str(server.tool(tool)), *args],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def dump(server: PostgresServer, database: str, path: Path) -> None:
    proc = run_tool(server, "pg_dump", "-Fc", "-f", str(path), "-d", database)
    assert proc.returncode == 0, proc.stderr


def test_tools_match_server_major(pg: PostgresServer) -> None:
    """The server and the client tools in ``bin_dir`` are of the same major version."""
    assert pg.server_version().split(".")[0] == str(pg.major)
    for tool in ("pg_dump", "pg_restore", "psql"):
        out = run_tool(pg, tool, "--version").stdout
        assert f" {pg.major}." in out, out


def test_dump_restore_round_trip_is_exact(pg: PostgresServer, database: Database, tmp_path: Path) -> None:
    """pg_dump -Fc then pg_restore of the same major reproduces every row, JSONB included."""
    database.execute(SEED_SQL)
    before = database.scalar(DIGEST_SQL)
    assert before.startswith(f"{ROWS}:")
    archive = tmp_path / "items.dump"
    dump(pg, database.name, archive)
    target = pg.create_database()
    try:
        proc = run_tool(pg, "pg_restore", "--single-transaction", "--no-owner", "-d", target, str(archive))
        assert proc.returncode == 0, proc.stderr
        assert pg.scalar(DIGEST_SQL, target) == before
        # The sequence came back too: new rows do not collide with restored ones.
        assert pg.scalar(
            "INSERT INTO items (sku, price, created, attrs) VALUES ('new', 1, now(), '{}') RETURNING id", target
        ) == str(ROWS + 1)
    finally:
        pg.drop_database(target)


def test_pg18_restore_into_pg15_fails_on_transaction_timeout(
    pg15: PostgresServer, pg18: PostgresServer, tmp_path: Path
) -> None:
    """Known pitfall: pg_dump >= 17 writes ``SET transaction_timeout``, which a 15 server rejects,
    so a single-transaction restore with 18's tools aborts and restores nothing; and 15's
    pg_restore cannot read 18's archive at all. Hence: the tools of the server's major."""
    source = pg18.create_database()
    target = pg15.create_database()
    try:
        pg18.execute(
            "CREATE TABLE t (id int PRIMARY KEY, doc jsonb); "
            "INSERT INTO t SELECT g, jsonb_build_object('g', g) FROM generate_series(1, 100) g",
            source,
        )
        archive = tmp_path / "pg18.dump"
        dump(pg18, source, archive)

        proc = subprocess.run(
            [str(pg18.tool("pg_restore")), "--single-transaction", "--no-owner", "-d", target, str(archive)],
            env=pg15.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert 'unrecognized configuration parameter "transaction_timeout"' in proc.stderr, proc.stderr
        assert pg15.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'", target) == "0"

        old = subprocess.run(
            [str(pg15.tool("pg_restore")), "--single-transaction", "-d", target, str(archive)],
            env=pg15.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert old.returncode != 0
        assert "unsupported version" in old.stderr, old.stderr
    finally:
        pg18.drop_database(source)
        pg15.drop_database(target)


def test_password_is_checked_and_url_quoting_works(pg: PostgresServer, database: Database) -> None:
    """Roles log in with SCRAM passwords through the URL (special characters quoted); a wrong one is refused."""
    role, password = f"app_{database.name}", "p@ss:w/rd%?#'"
    pg.create_role(role, password)
    try:
        url = database.url_for(role, password)
        assert password not in url  # it is percent-encoded, as in a real URL
        ok = subprocess.run(
            [str(pg.tool("psql")), "-X", "-At", "-c", "SELECT current_user", url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ok.stdout.strip() == role, ok.stderr
        bad = subprocess.run(
            [str(pg.tool("psql")), "-X", "-At", "-c", "SELECT 1", database.url_for(role, "wrong")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert bad.returncode != 0
        assert "password authentication failed" in bad.stderr
    finally:
        pg.drop_role(role)


def test_restart_keeps_committed_data_and_drops_sessions(pg: PostgresServer, database: Database) -> None:
    """What fault tests rely on: restart() ends open sessions (their transaction is lost),
    and committed data survives, on the same port."""
    database.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")
    session = subprocess.Popen(
        [
            str(pg.tool("psql")),
            "-X",
            "-q",
            "-d",
            database.name,
            "-c",
            "BEGIN; INSERT INTO kept VALUES (2); SELECT pg_sleep(60); COMMIT;",
        ],
        env=pg.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_sleeper(pg, database.name)
        port = pg.port
        pg.restart()
        _, err = session.communicate(timeout=30)
        assert session.returncode != 0
        assert "terminat" in err or "server closed the connection" in err, err
        assert pg.port == port
        assert database.query("SELECT v FROM kept ORDER BY v") == [("1",)]
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()


def test_crash_recovers(pg: PostgresServer) -> None:
    """stop('immediate') is a crash; the next start runs recovery and committed data is there."""
    name = pg.create_database()
    try:
        pg.execute("CREATE TABLE c (v int); INSERT INTO c SELECT generate_series(1, 1000)", name)
        pg.stop("immediate")
        pg.start()
        assert pg.scalar("SELECT count(*) FROM c", name) == "1000"
    finally:
        pg.drop_database(name)


def _wait_for_sleeper(pg: PostgresServer, database: str) -> None:
    from testbed.procs import wait_until

    wait_until(
        lambda: (
            pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                f"'{database}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
            )
            == "1"
        ),
        10,
        "the long transaction to start",
    )
