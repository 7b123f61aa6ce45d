"""Helpers shared by tests/helm: run helm/kubectl/kstatus, render charts, evaluate the Argo CD Lua.

Imported as ``tests.helm.support`` (``tests`` is a namespace package; PYTHONPATH=.).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from testbed import tools, workers

REPO = tools.REPO
CHARTS = REPO / "charts"
OPERATOR_CHART = CHARTS / "alembic-operator"
HOOK_CHART = CHARTS / "alembic-operator-hook"
APP_CHART = CHARTS / "example-app"
GITOPS = REPO / "examples" / "gitops"
ARGOCD_LUA = GITOPS / "argocd" / "health.lua"
DOC = REPO / "README.md"


def run(
    argv: Sequence[str | Path],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on an unexpected exit code fail with its output."""
    proc = subprocess.run(
        [str(a) for a in argv],
        input=input,
        text=True,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def helm(
    *args: str | Path,
    kubeconfig: Path | None = None,
    check: bool = True,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real helm; a private HELM_* home so nothing of the user's leaks in or out."""
    home = Path(tempfile.gettempdir()) / f"alembic-operator-helm-home-{workers.worker_name()}"  # one per xdist worker
    env = {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return run([tools.binary("helm"), *args], env=env, check=check, timeout=timeout, input=input)


def kubectl(
    kubeconfig: Path, *args: str | Path, check: bool = True, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run([tools.binary("kubectl"), "--kubeconfig", kubeconfig, *args], check=check, input=input, timeout=timeout)


def kstatus(obj: dict[str, Any]) -> str:
    """The kstatus verdict of ``obj`` (InProgress, Current, Failed...) from sigs.k8s.io/cli-utils."""
    return run([tools.binary("kstatus")], input=json.dumps(obj)).stdout.strip()


def kstatus_result(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(run([tools.binary("kstatus"), "-json"], input=json.dumps(obj)).stdout)


def app_chart_copy(dest: Path) -> Path:
    """A copy of charts/ with example-app's dependency built (helm dependency build), leaving the repo clean."""
    target = dest / "charts"
    if not target.exists():
        shutil.copytree(CHARTS, target, ignore=shutil.ignore_patterns("*.tgz"))
        helm("dependency", "build", target / "example-app")
    return target / "example-app"


def operator_chart_at(dest: Path, version: str) -> Path:
    """A copy of charts/alembic-operator under ``dest`` whose Chart.yaml says ``version``: the next release a
    `helm upgrade` installs."""
    chart = dest / "alembic-operator"
    shutil.copytree(OPERATOR_CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = version
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def template(
    chart: Path, *args: str, release: str = "rel", namespace: str = "default", check: bool = True
) -> subprocess.CompletedProcess[str]:
    return helm("template", release, chart, "--namespace", namespace, *args, check=check)


def render(chart: Path, *args: str, release: str = "rel", namespace: str = "default") -> list[dict[str, Any]]:
    """Render a chart with helm template; the objects, hooks included."""
    out = template(chart, *args, release=release, namespace=namespace).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll until ``predicate`` returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- the Argo CD health check, evaluated by a real Lua interpreter ---------------------------


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua as Argo CD does: a global ``obj`` (the live object), the script's return value."""
    import lupa

    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, json.loads(json.dumps(obj)))
    result = lua.execute(ARGOCD_LUA.read_text())
    return {k: result[k] for k in ("status", "message") if result[k] is not None}


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


# -- examples embedded in the README ---------------------------------------------


def doc_example(name: str) -> str:
    """The fenced block that follows ``<!-- example: NAME -->`` in the README."""
    text = DOC.read_text()
    match = re.search(r"<!-- example: " + re.escape(name) + r" -->\s*\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert match, f"no example {name!r} in {DOC}"
    return match.group(1) + "\n"


def doc_includes(path: Path) -> str:
    """The fenced block that follows ``<!-- file: <path> -->``: must equal the file (one source)."""
    rel = path.relative_to(REPO).as_posix()
    text = DOC.read_text()
    match = re.search(r"<!-- file: " + re.escape(rel) + r" -->\s*\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert match, f"{DOC} does not include {rel}"
    return match.group(1) + "\n"
