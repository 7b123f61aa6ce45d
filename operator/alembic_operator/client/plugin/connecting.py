"""An API client as the user: their kubeconfig (``KUBECONFIG`` or ``--kubeconfig``) and context.

kubectl hands a plugin no connection, only the environment and the words after
``kubectl alembic``; so like kubectl itself the plugin reads the kubeconfig, takes the
namespace from the context unless ``-n`` names one, and falls back to the in-cluster
service account only when there is no kubeconfig at all.

Must not: fall back to any identity other than the user's.
"""

from __future__ import annotations

import dataclasses

from kubernetes import client, config

from alembic_operator import kube


@dataclasses.dataclass(frozen=True)
class Connection:
    """A client as the user, and the namespace their command is about."""

    api: client.ApiClient
    namespace: str


def connect(*, kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    """Load the kubeconfig (or the in-cluster account) and pick the namespace."""
    configuration = client.Configuration()
    default_namespace = "default"
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        _contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in _contexts if c["name"] == context), current) if context else current
        default_namespace = (chosen.get("context") or {}).get("namespace") or default_namespace
    except config.ConfigException:
        if kubeconfig or context:
            raise
        config.load_incluster_config(client_configuration=configuration)
    kube._send_bearer_token(configuration)  # kubernetes==36 sends a kubeconfig token only after this copy
    return Connection(api=client.ApiClient(configuration), namespace=namespace or default_namespace)
