"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The node (kube-scheduler, kubelet, containerd) is :mod:`testbed.node`. Everything
here listens on 127.0.0.1 on free ports (and on the node IP, below) and keeps its
data, certificates and logs under the ``workdir`` given to :meth:`Cluster.start`.

Start-up, in order:

1. certificates and keys (:mod:`testbed.certs`), the token file, the admin kubeconfig;
2. etcd, waiting for its client port;
3. kube-apiserver (RBAC and Node authorization, static token auth, default
   admission plugins including ServiceAccount and PodSecurity), waiting for ``/readyz``;
4. kube-controller-manager with the controllers our operator's objects need,
   waiting for the ``default`` ServiceAccount (proof that its controllers run).

With ``node_ip`` (a real node, :mod:`testbed.node`, in the bed's network namespace,
:mod:`testbed.netns`) the apiserver also listens on the node IP (in its serving
certificate) so pods reach it, talks to the kubelet with a client certificate at
its InternalIP, and kube-controller-manager also runs the node-lifecycle controller
(it removes the ``not-ready`` taint from a Ready node).

This module must not emulate anything: it only starts and talks to real binaries.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import ssl
import subprocess
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import yaml

from testbed import certs, ports, procs, tools

logger = logging.getLogger(__name__)

ADMIN_USER = "bed-admin"
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "replicaset-controller",
    "deployment-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
"""Controllers kube-controller-manager runs. Beyond what Jobs, garbage collection and
Deployments need: ``root-ca-certificate-publisher-controller`` makes the
``kube-root-ca.crt`` ConfigMap every namespace has on a real cluster, and
``clusterrole-aggregation-controller`` fills the built-in ``admin``/``edit``/``view``
ClusterRoles (empty without it)."""
NODE_CONTROLLERS = ("node-lifecycle-controller",)
"""Added to :data:`CONTROLLERS` with a real node: without it a new Node keeps its
``node.kubernetes.io/not-ready`` taint and nothing is scheduled on it."""

SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 90.0
"""Seconds each server gets to become ready (a cold apiserver takes ~5-15 s)."""


class KubectlFailed(subprocess.CalledProcessError):
    """A kubectl that exited non-zero; unlike its base class, its message carries kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {str(self.stderr or '').strip()[-2000:]}"


def write_kubeconfig(
    path: Path, *, server: str, ca_file: Path, token: str, user: str, namespace: str = "default"
) -> Path:
    """Write a token kubeconfig with the CA inline, so it works from any directory."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": user, "namespace": namespace}}],
        "current-context": "bed",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def configuration_from_kubeconfig(path: Path) -> kubernetes.client.Configuration:
    """A client Configuration from a kubeconfig file, with its token actually sent.

    kubernetes==36.0.0's ``load_kube_config`` stores a token under
    ``api_key["authorization"]`` while the generated client only sends
    ``api_key["BearerToken"]``: without this move every request is anonymous (403).
    """
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(path), client_configuration=config)
    token = config.api_key.pop("authorization", None)
    if token and "BearerToken" not in config.api_key:
        config.api_key["BearerToken"] = token  # already "Bearer <token>"
    return config


class Cluster:
    """The control plane of one test session; see the module docstring for what runs."""

    kubeconfig: Path
    """Admin kubeconfig (user ``bed-admin`` in group ``system:masters``)."""
    server: str
    """``https://127.0.0.1:<port>`` of the apiserver."""
    ca_file: Path
    """The CA that signed the apiserver's serving certificate."""
    admin_token: str
    """Bearer token of the admin user (from the apiserver's static token file)."""

    def __init__(self, node_ip: str | None = None) -> None:
        self.node_ip = node_ip
        """Set for a real node: the apiserver serves on it too (see the module docstring)."""
        self.workdir: Path | None = None
        self.servers: list[procs.Server] = []
        self.certs: certs.ClusterCerts | None = None
        self.apiserver_port = 0
        self.admin_token = ""
        self.server = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, workdir: Path) -> Cluster:
        """Start etcd, kube-apiserver and kube-controller-manager; return when usable.

        Binaries are looked up first so a missing one fails before anything starts.
        On any failure the servers already started are stopped before re-raising.
        """
        binaries = {
            name: tools.binary(name) for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
        }
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.certs = certs.generate(workdir / "pki", extra_sans=(f"IP:{self.node_ip}",) if self.node_ip else ())
        self.ca_file = self.certs.ca_cert
        self.admin_token = secrets.token_hex(24)
        try:
            etcd_url = self._start_etcd(binaries["etcd"])
            self._start_apiserver(binaries["kube-apiserver"], etcd_url)
            self.kubeconfig = write_kubeconfig(
                workdir / "admin.kubeconfig",
                server=self.server,
                ca_file=self.ca_file,
                token=self.admin_token,
                user=ADMIN_USER,
            )
            self._start_controller_manager(binaries["kube-controller-manager"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers in reverse order of start; safe to call twice."""
        while self.servers:
            server = self.servers.pop()
            server.stop(timeout=10)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_etcd(self, etcd: Path) -> str:
        assert self.workdir is not None
        client_port, peer_port = ports.free_port(), ports.free_port()
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        server = procs.start(
            "etcd",
            [
                etcd,
                "--name=bed",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=bed={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",  # test data only: fsync makes every write wait for the disk
                "--log-level=warn",
            ],
            log_dir=self.workdir / "logs",
        )
        self.servers.append(server)
        procs.wait_until(lambda: _http_ok(f"{client_url}/health"), START_TIMEOUT, "etcd /health", server=server)
        return client_url

    def _start_apiserver(self, apiserver: Path, etcd_url: str) -> None:
        assert self.workdir is not None and self.certs is not None
        # With a node: the bed's own namespace, where 443 is free and the kubernetes Service's IP is local.
        self.apiserver_port = 443 if self.node_ip else ports.free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        token_file = self.workdir / "tokens.csv"
        token_file.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        token_file.chmod(0o600)
        server = procs.start(
            "kube-apiserver",
            [
                apiserver,
                f"--etcd-servers={etcd_url}",
                *(self._node_apiserver_flags() or ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"]),
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={self.certs.serving_cert}",
                f"--tls-private-key-file={self.certs.serving_key}",
                f"--client-ca-file={self.certs.ca_cert}",
                "--authorization-mode=Node,RBAC",
                f"--token-auth-file={token_file}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={self.certs.sa_public_key}",
                f"--service-account-signing-key-file={self.certs.sa_private_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # The "kubernetes" Endpoints may not point at a loopback address; nothing routes to it anyway.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
            log_dir=self.workdir / "logs",
        )
        self.servers.append(server)
        procs.wait_until(self._apiserver_ready, START_TIMEOUT, "kube-apiserver /readyz", interval=0.3, server=server)

    def _node_apiserver_flags(self) -> list[str]:
        """With a real node: listen on the node IP too (all of the bed's own network
        namespace), reach kubelets at their InternalIP with a client certificate."""
        if not self.node_ip:
            return []
        assert self.certs is not None
        cert, key = certs.client_cert(
            self.certs, "apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client"
        )
        return [
            "--bind-address=0.0.0.0",
            f"--advertise-address={self.node_ip}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={cert}",
            f"--kubelet-client-key={key}",
        ]

    def _start_controller_manager(self, kcm: Path) -> None:
        assert self.workdir is not None and self.certs is not None
        server = procs.start(
            "kube-controller-manager",
            [
                kcm,
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(CONTROLLERS + (NODE_CONTROLLERS if self.node_ip else ()))}",
                f"--service-account-private-key-file={self.certs.sa_private_key}",
                f"--root-ca-file={self.certs.ca_cert}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.free_port()}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--profiling=false",
                "--v=1",
            ],
            log_dir=self.workdir / "logs",
        )
        self.servers.append(server)
        procs.wait_until(
            self._default_service_account_exists,
            START_TIMEOUT,
            "the default ServiceAccount (kube-controller-manager)",
            interval=0.3,
            server=server,
        )

    # -- probes ------------------------------------------------------------------------------

    def _get(self, path: str) -> tuple[int, bytes]:
        """GET a path of the apiserver as admin with the stdlib (usable before any kubeconfig)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()

    def _apiserver_ready(self) -> bool:
        return self._get("/readyz")[0] == 200

    def _default_service_account_exists(self) -> bool:
        return self._get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    # -- clients -----------------------------------------------------------------------------

    def configuration(self, token: str | None = None) -> kubernetes.client.Configuration:
        """A client Configuration for the admin (or for ``token``)."""
        config = kubernetes.client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.ca_file)
        config.verify_ssl = True
        config.api_key = {"BearerToken": token or self.admin_token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def api_client(self, token: str | None = None) -> kubernetes.client.ApiClient:
        """A new official-client ApiClient for the admin (or for ``token``); close it when done."""
        return kubernetes.client.ApiClient(self.configuration(token))

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster (admin unless ``kubeconfig`` is given).

        Output is captured as text; ``check`` raises with stderr on a non-zero exit.
        """
        argv: Sequence[str] = [str(tools.binary("kubectl")), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        text_input = input.decode() if isinstance(input, bytes) else input
        proc = subprocess.run(list(argv), input=text_input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlFailed(proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc

    def service_account_token(self, namespace: str, service_account: str, *, expiration_seconds: int = 3 * 3600) -> str:
        """A token for the ServiceAccount from the TokenRequest API (like a pod's projected token)."""
        with self.api_client() as api:
            request = kubernetes.client.AuthenticationV1TokenRequest(
                spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
            )
            response = kubernetes.client.CoreV1Api(api).create_namespaced_service_account_token(
                service_account, namespace, request
            )
            return str(response.status.token)

    def sa_kubeconfig(self, namespace: str, service_account: str, path: Path | None = None) -> Path:
        """Write a kubeconfig that authenticates as the ServiceAccount, so RBAC is tested for real."""
        assert self.workdir is not None
        token = self.service_account_token(namespace, service_account)
        path = path or self.workdir / "sa-kubeconfigs" / f"{namespace}_{service_account}.kubeconfig"
        return write_kubeconfig(
            path,
            server=self.server,
            ca_file=self.ca_file,
            token=token,
            user=f"system:serviceaccount:{namespace}:{service_account}",
            namespace=namespace,
        )

    def logs(self) -> dict[str, Path]:
        """Log file of each server, for failure reports."""
        assert self.workdir is not None
        return {path.stem: path for path in sorted((self.workdir / "logs").glob("*.log"))}


def _http_ok(url: str) -> bool:
    """True when a plain-HTTP GET answers 200 with a healthy body (etcd's /health)."""
    with urllib.request.urlopen(url, timeout=2) as response:
        body: Any = json.loads(response.read() or b"{}")
        return int(response.status) == 200 and str(body.get("health", "true")) == "true"
