"""Kopf's connection to the Kubernetes API, with a bounded pool of connections (issue 18).

Kopf's own session has no limit on connections (``aiohttp.TCPConnector(limit=0)``): when hundreds
of runs are applied at once, every one of its per-object workers patches at the same moment and
each opens its own TLS connection — 92 at once with 100 runs in the scale benchmark, each with a
256 KiB read buffer and OpenSSL's state, kept until the keep-alive expires. That is memory the
operator never gives back (its peak RSS is the 1,000-run line). Here Kopf logs in with :func:`credentials`
(the same that :mod:`.apiserver` sends) and gets a session whose pool holds at most :func:`pool_size`
connections; requests beyond it wait for a free one (HTTP/1.1 keep-alive reuses them).

Watches hold a connection each for as long as they stream, so the pool leaves room for them: three
watches (runs, Jobs, Pods) per watched namespace, or per cluster, plus Kopf's CRD discovery.

Must not: read or write objects (that is Kopf's and :mod:`.apiserver`'s), or import the official
client but for a kubeconfig only it can read.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kopf

WATCHES_PER_SCOPE = 4
"""Connections each watched namespace (or the whole cluster) keeps streaming: runs, Jobs, Pods, and one spare."""

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")

FOR_REQUESTS = 16
"""Connections left for Kopf's patches, Events and re-listings beyond the watches."""


def pool_size(*, namespaces: int) -> int:
    """Connections Kopf may hold at once: the watches of ``namespaces`` (0: cluster-wide) plus :data:`FOR_REQUESTS`."""
    return WATCHES_PER_SCOPE * max(1, namespaces) + FOR_REQUESTS


def session(info: kopf.ConnectionInfo, *, limit: int) -> aiohttp.ClientSession:
    """The session Kopf would build from ``info`` (same TLS, headers, auth, proxy), with at most ``limit``
    connections. Call it on the running event loop; Kopf closes it when it logs in again or stops."""
    with warnings.catch_warnings():  # as Kopf: its own deprecation of the helper, not aiohttp's warnings
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="kopf")
        auth = info.as_aiohttp_basic_auth()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=auth,
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )


def credentials(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
    """How to reach and authenticate to the apiserver: in-cluster, else KUBECONFIG (see the module docstring)."""
    settings = settings or kopf.OperatorSettings()
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = SERVICE_ACCOUNT / "token"
    if host and port and token.exists():
        ca = SERVICE_ACCOUNT / "ca.crt"
        namespace = SERVICE_ACCOUNT / "namespace"
        return kopf.ConnectionInfo(
            server=f"https://{f'[{host}]' if ':' in host else host}:{port}",
            ca_path=str(ca) if ca.exists() else None,
            token=token.read_text().strip() or None,
            default_namespace=namespace.read_text().strip() if namespace.exists() else None,
            trust_env=settings.networking.trust_env,
        )
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is not None and (info.token or info.certificate_path or info.certificate_data or info.username):
        return info
    if sys.modules.get("kubernetes", False) is None:  # main.skip_model_clients' block: lifted for this loader
        sys.modules.pop("kubernetes")
    fallback = kopf.login_via_client(logger=logging.getLogger(__name__), settings=settings)  # exec plugins and the like
    if fallback is None:
        raise kopf.LoginError("no credentials: no service account, and no KUBECONFIG with a token or a certificate")
    return fallback


class Sized(Protocol):
    """The operator's memo as this module reads it (:class:`.handlers.ControllerMemo`)."""

    api_connections: int


@kopf.on.login()
async def login(*, memo: Sized, logger: kopf.Logger, settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession:
    """Kopf's login with :func:`credentials`, served over a bounded pool."""
    info = credentials(settings)
    return kopf.AiohttpSession(
        aiohttp_session=session(info, limit=memo.api_connections),
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,  # Kopf logs in again before it, as with its own session
    )
