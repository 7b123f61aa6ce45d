"""Where the operator's credentials come from without the official client (controller/connecting.py).

In a pod: the service account's files and ``KUBERNETES_SERVICE_HOST``/``_PORT`` (no cluster DNS
needed). Elsewhere: a plain KUBECONFIG (token, certificates). A kubeconfig with none of those (an exec
plugin, a cloud auth provider) falls back to the official client's loader, which the operator process
otherwise never imports. The fallback runs in a fresh interpreter: an import cannot be undone here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alembic_operator.controller import connecting


def kubeconfig(path: Path, user: dict[str, object]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "apps"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "sa"
    folder.mkdir()
    (folder / "token").write_text("sa-token\n")
    (folder / "namespace").write_text("alembic-operator")
    monkeypatch.setattr(connecting, "SERVICE_ACCOUNT", folder)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "ignored", {"token": "not-this-one"})))
    return folder


def test_in_a_pod_the_service_account_and_the_service_host_are_used(service_account, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    info = connecting.credentials()
    assert info.server == "https://10.96.0.1:443"
    assert info.as_http_headers() == {"Authorization": "Bearer sa-token"}
    assert info.default_namespace == "alembic-operator"


def test_an_ipv6_service_host_is_bracketed(service_account, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert connecting.credentials().server == "https://[fd00::1]:443"


def test_without_the_service_host_the_kubeconfig_is_read(service_account, monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kc", {"token": "kc-token"})))
    info = connecting.credentials()
    assert info.server == "https://10.0.0.1:6443"
    assert info.as_http_headers() == {"Authorization": "Bearer kc-token"}
    assert info.default_namespace == "apps"


FALLBACK = """
import json, sys
from alembic_operator.controller import main
main.skip_model_clients()
from alembic_operator.controller import connecting
info = connecting.credentials()
print(json.dumps({"server": info.server, "kubernetes": sys.modules.get("kubernetes") is not None}))
"""


def test_a_kubeconfig_only_the_official_client_understands_loads_it(tmp_path):
    """An exec plugin: Kopf's plain reader finds no credential, so the official client's loader runs it."""
    plugin = tmp_path / "plugin.sh"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": "t"}}
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}}
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig(tmp_path / "kc", exec_user))}
    done = subprocess.run([sys.executable, "-c", FALLBACK], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"server": "https://10.0.0.1:6443", "kubernetes": True}


def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(connecting, "SERVICE_ACCOUNT", tmp_path / "none")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="missing"):
        connecting.credentials()
