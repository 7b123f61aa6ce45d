"""Run the controller: ``alembic-operator operator``.

Starts Kopf with the handlers in :mod:`alembic_operator.controller.handlers`, the
Prometheus metrics server and Kopf's liveness endpoint. The settings are read once
here and reach the handlers in their shared memo (:class:`handlers.ControllerMemo`). One replica is the
supported shape (Kopf has no Lease-based leader election); two processes
started at once coordinate through Kopf peering when ``--peering`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import kopf

MODEL_CLIENTS = ("kubernetes", "kubernetes_asyncio")
"""The official clients Kopf would import for their model classes (:func:`skip_model_clients`)."""

HELP = """Run the MigrationRun controller (Kopf) with metrics and a liveness endpoint."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="Prometheus port (default 8080; 0 = off)")
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8081/healthz", help="Kopf liveness endpoint URL ('' = off)"
    )
    parser.add_argument(
        "--peering", default=None, help="Kopf peering name (requires the KopfPeering CRDs); default: standalone"
    )


def configure_logging(*, log_format: str, level: str) -> None:
    """Kopf's own format for every log line: JSON objects (with the run's namespace and name under
    ``object``) for ``--log-format json``, else Kopf's text. Kopf's handler replaces the one
    ``cli.main`` installed, so no line is written twice."""
    import kopf

    root = logging.getLogger()
    ours = list(root.handlers)
    kopf.configure(log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    root.handlers[:] = [h for h in root.handlers if h not in ours]
    root.setLevel(level.upper())


def kopf_settings(*, namespaced: bool) -> kopf.OperatorSettings:
    """Kopf's settings before any handler runs (``_startup`` in handlers.py adds the rest).

    Namespaced (``--namespace``): no scanning of the cluster. Otherwise Kopf first lists and
    watches all namespaces, which a namespaced install's Role forbids, and serves the named
    namespaces only after that fails (about a minute). The named namespaces are served as
    given; CRDs are discovered once at start (the chart installs the CRD before the operator)."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.scanning.disabled = namespaced
    return settings


def skip_model_clients() -> None:
    """Make the official clients unimportable in this process before Kopf is imported.

    Kopf imports ``kubernetes`` and ``kubernetes_asyncio`` (which ``kubernetes==36.0.0``'s wheel
    ships beside the sync client) whenever it can, only to recognise their model objects in
    ``kopf.adopt`` and friends, which the operator never passes. Those imports are ~1,700 modules
    and ~70 MiB of the operator's resident memory for nothing (issue 18: memory at 1,000 runs);
    the operator talks to the API through :mod:`.apiserver`. A ``None`` in ``sys.modules`` makes
    ``import`` raise ``ImportError``, which Kopf already handles as "not installed"
    (:func:`.connecting.credentials` lifts it for a kubeconfig only the official client can read).
    A process that imported them already keeps them."""
    for name in MODEL_CLIENTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"


def run(args: argparse.Namespace) -> dict[str, Any]:
    skip_model_clients()
    import kopf

    from alembic_operator.controller import connecting, handlers, metrics
    from alembic_operator.controller import settings as settings_mod

    settings = settings_mod.Settings.from_env()
    port = settings.metrics.port if args.metrics_port is None else args.metrics_port
    if port:
        metrics.serve(port)
    configure_logging(log_format=args.log_format, level=args.log_level)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or None,
            standalone=args.peering is None,
            peering_name=args.peering,
            memo=handlers.ControllerMemo(
                settings=settings, api_connections=connecting.pool_size(namespaces=len(args.namespace))
            ),
            settings=kopf_settings(namespaced=bool(args.namespace)),
        )
    )
    return {}
