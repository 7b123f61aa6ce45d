"""The command-line client's door to the Kubernetes API (official client, synchronous): the Helm hook's
``alembic-operator run`` and the kubectl plugin create, read and follow runs through it.

The operator does not use it: :mod:`alembic_operator.controller.apiserver` is its door, without the
official client's ~40 MiB of generated models. There is deliberately no function that reads a
Secret (safety rule 1).
"""

from __future__ import annotations

import functools
import json
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from alembic_operator.api import constants


@functools.cache
def api_client() -> client.ApiClient:
    """An ApiClient from the in-cluster service account, else from KUBECONFIG."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    _send_bearer_token(configuration)
    return client.ApiClient(configuration)


def _send_bearer_token(configuration: client.Configuration) -> None:
    """Make the loaded token actually be sent, now and after every refresh.

    kubernetes==36.0.0's config loaders store the token under
    ``api_key["authorization"]`` while its generated client sends only
    ``api_key["BearerToken"]``: without the copy every request is anonymous.
    """

    def copy(conf: client.Configuration) -> None:
        token = conf.api_key.get("authorization")
        if token:
            conf.api_key["BearerToken"] = token.split(" ", 1)[-1]
            conf.api_key_prefix["BearerToken"] = "Bearer"

    refresh = configuration.refresh_api_key_hook

    def refresh_and_copy(conf: client.Configuration) -> None:
        if refresh is not None:
            refresh(conf)
        copy(conf)

    copy(configuration)
    configuration.refresh_api_key_hook = refresh_and_copy


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def api_message(exc: ApiException) -> str:
    """The human message of an API error (its Status.message), else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except ValueError:
        return str(exc.reason)


def get_run(*, namespace: str, name: str) -> dict[str, Any] | None:
    """The MigrationRun as a dict, or ``None`` when it is gone."""
    try:
        return cast(
            dict[str, Any],
            _custom().get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
            ),
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def create_run(*, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create a MigrationRun; on 409 return the existing one (re-running a hook is a no-op)."""
    try:
        return cast(
            dict[str, Any],
            _custom().create_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, manifest
            ),
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = get_run(namespace=namespace, name=manifest["metadata"]["name"])
    assert existing is not None
    return existing
