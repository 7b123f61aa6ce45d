"""Certificates and keys for the test-bed cluster, made with the ``openssl`` CLI.

The venv has no ``cryptography`` package (nothing we depend on pulls it in), and
``openssl`` is on every machine that can build the Go tools, so we shell out to it.

What is made (all in one directory, PEM):

1. ``ca.crt``/``ca.key``: a self-signed CA; clients (kubectl, the Python client,
   the pods' kubeconfigs) trust it.
2. ``apiserver.crt``/``apiserver.key``: the apiserver's serving certificate, signed
   by the CA, valid for 127.0.0.1, localhost, the in-cluster DNS names and the
   first service IP (10.0.0.1), so in-cluster style clients verify it too.
3. ``sa.key``/``sa.pub``: the RSA pair that signs and verifies ServiceAccount tokens.

This module must not start servers; :mod:`testbed.cluster` does.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed import tools

SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class ClusterCerts:
    """Paths of the PEM files one cluster uses."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    """Run openssl; a failure raises with its stderr (never a half-made directory silently)."""
    openssl = tools.system_binary("openssl", "install the openssl package (apt-get install openssl)")
    proc = subprocess.run([str(openssl), *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _sign(directory: Path, certs: ClusterCerts, *, csr: str, ext: Path, out: str, days: int) -> None:
    """Sign ``csr`` with the bed's CA, with the extensions in ``ext`` (serving and client certificates alike)."""
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        certs.ca_cert.name,
        "-CAkey",
        certs.ca_key.name,
        "-CAcreateserial",
        "-sha256",
        "-days",
        str(days),
        "-extfile",
        ext.name,
        "-out",
        out,
        cwd=directory,
    )


def generate(directory: Path, *, days: int = 30, extra_sans: tuple[str, ...] = ()) -> ClusterCerts:
    """Create the CA, the apiserver serving pair and the ServiceAccount key pair in ``directory``.

    ``extra_sans`` (``IP:...``/``DNS:...``) are added to the apiserver's serving
    certificate, e.g. the node IP pods reach it at.
    """
    directory.mkdir(parents=True, exist_ok=True)
    certs = ClusterCerts(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_private_key=directory / "sa.key",
        sa_public_key=directory / "sa.pub",
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        str(days),
        "-subj",
        "/CN=alembic-operator-testbed-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-keyout",
        certs.ca_key.name,
        "-out",
        certs.ca_cert.name,
        cwd=directory,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        certs.serving_key.name,
        "-out",
        "apiserver.csr",
        cwd=directory,
    )
    ext = directory / "apiserver.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(SERVING_SANS + tuple(extra_sans))}\n"
    )
    _sign(directory, certs, csr="apiserver.csr", ext=ext, out=certs.serving_cert.name, days=days)
    _openssl("genrsa", "-out", certs.sa_private_key.name, "2048", cwd=directory)
    _openssl("rsa", "-in", certs.sa_private_key.name, "-pubout", "-out", certs.sa_public_key.name, cwd=directory)
    for key in (certs.ca_key, certs.serving_key, certs.sa_private_key):
        key.chmod(0o600)
    return certs


def client_cert(
    certs: ClusterCerts, name: str, *, common_name: str, organizations: tuple[str, ...] = (), days: int = 30
) -> tuple[Path, Path]:
    """A client certificate and key signed by the CA (``<name>.crt``/``<name>.key`` beside it).

    The subject is ``CN=common_name`` with one ``O=`` per organization: the
    apiserver maps them to the user name and its groups (``system:node:<node>``
    in ``system:nodes`` is what the Node authorizer recognises).
    """
    directory = certs.ca_cert.parent
    subject = "".join(f"/O={org}" for org in organizations) + f"/CN={common_name}"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-subj",
        subject,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=directory,
    )
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    )
    _sign(directory, certs, csr=f"{name}.csr", ext=ext, out=f"{name}.crt", days=days)
    (directory / f"{name}.key").chmod(0o600)
    return directory / f"{name}.crt", directory / f"{name}.key"
