"""Create a MigrationRun and follow it to the end; the exit code says how it ended.

This is what a Helm pre-install/pre-upgrade hook Job or a CI job runs: Helm
waits only for Job and Pod hooks, so the hook Job is what makes
``helm upgrade`` stop when the migration fails. Creating a run that already
exists is not an error when it asks for the same thing: re-running a hook (Argo CD
runs PreSync hooks on every sync) follows the existing run, and one that already
Succeeded returns at once. A run of that name with another spec is refused (issue
14, finding 5: anyone who may create runs could otherwise answer for this hook).

Flow:
1. read the manifest, set name/namespace from flags;
2. create it, or take the existing run of that name when its spec is the same;
3. poll its status, printing each phase change and message;
4. exit 0 on Succeeded, non-zero (RunFailed/RunHeld/RunTimeout) otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pydantic
import yaml
from kubernetes.client.exceptions import ApiException

from alembic_operator import kube
from alembic_operator.api import constants, errors, model, results

HELP = """Create a MigrationRun and follow it until it ends (exit 0 only when it Succeeded).

Used by the Helm hook Job and by CI. Re-running it for a run that already
exists follows that run instead of creating another."""

TERMINAL_FAILED = {"Failed", "RolledBack", "RollbackFailed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest", required=True, type=Path, help="YAML file with the MigrationRun (apiVersion/kind may be omitted)"
    )
    parser.add_argument("--name", help="run name (overrides metadata.name); name it after the release revision")
    parser.add_argument("--namespace", help="namespace (overrides metadata.namespace; default: the pod's)")
    parser.add_argument("--timeout-seconds", type=float, default=3600.0, help="give up after this long")
    parser.add_argument("--interval-seconds", type=float, default=2.0, help="poll interval")


def _own_namespace() -> str:
    try:
        return Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    except OSError:
        return "default"


def load_manifest(*, path: Path, name: str | None, namespace: str | None) -> dict[str, Any]:
    """Read and complete the manifest; InvalidInput names what is wrong."""
    try:
        manifest = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise errors.InvalidInput(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("spec"), dict):
        raise errors.InvalidInput(f"manifest {path} has no spec mapping")
    manifest.setdefault("apiVersion", constants.API_VERSION)
    manifest.setdefault("kind", constants.KIND)
    meta = manifest.setdefault("metadata", {})
    if name:
        meta["name"] = name
    if namespace:
        meta["namespace"] = namespace
    meta.setdefault("namespace", _own_namespace())
    if not meta.get("name"):
        raise errors.InvalidInput("the run has no name: give --name or metadata.name")
    return manifest


def spec_difference(*, wanted: dict[str, Any], existing: dict[str, Any]) -> str | None:
    """The spec fields (camelCase, top level) where an existing run differs from ``wanted``; None when equal.

    Both sides are parsed into the model first, so the defaults the apiserver filled in are no difference.
    A run that does not parse differs everywhere.
    """
    try:
        ours, theirs = model.parse_spec(dict(wanted)), model.parse_spec(dict(existing))
    except pydantic.ValidationError:
        return "its spec does not parse"
    a, b = model.dump(ours), model.dump(theirs)
    fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"spec.{k}" for k in fields) or None


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def follow(*, namespace: str, name: str, timeout: float, interval: float) -> dict[str, Any]:
    """Poll the run until a terminal phase; return its last status."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        run = kube.get_run(namespace=namespace, name=name)
        if run is None:
            raise errors.RunFailed(f"MigrationRun {namespace}/{name} was deleted while being followed")
        status = run.get("status") or {}
        phase = status.get("phase") or "Pending"
        shown = (phase, status.get("message"))
        if shown != last:
            _say(f"{name}: {phase}: {status.get('message') or ''}".rstrip(": "))
            last = shown
        if phase == "Succeeded":
            return status
        if phase in TERMINAL_FAILED:
            raise errors.RunFailed(f"MigrationRun {name} ended {phase}: {status.get('message', '')}", phase=phase)
        if phase == "RollbackHeld":
            raise errors.RunHeld(
                f"MigrationRun {name} is RollbackHeld and needs a person: {status.get('message', '')}", phase=phase
            )
        if time.monotonic() > deadline:
            raise errors.RunTimeout(f"MigrationRun {name} still {phase} after {timeout:.0f}s")
        time.sleep(interval)


def run(args: argparse.Namespace) -> results.RunResult:
    manifest = load_manifest(path=args.manifest, name=args.name, namespace=args.namespace)
    meta = manifest["metadata"]
    try:
        created = kube.create_run(namespace=meta["namespace"], manifest=manifest)
    except ApiException as exc:
        raise errors.InvalidInput(
            f"the apiserver refused MigrationRun {meta['name']}: {exc.status} {kube.api_message(exc)}"
        ) from None
    differs = spec_difference(wanted=manifest["spec"], existing=created.get("spec") or {})
    if differs:
        raise errors.InvalidInput(
            f"MigrationRun {meta['namespace']}/{meta['name']} already exists with another spec ({differs}): "
            "refusing to follow a run this hook did not ask for; name the run after the release revision "
            "or the spec (migration.nameBy), or delete the other run"
        )
    existed = created.get("metadata", {}).get("uid") and (created.get("status") or {}).get("phase")
    _say(f"{'following existing' if existed else 'created'} MigrationRun {meta['namespace']}/{meta['name']}")
    status = follow(
        namespace=meta["namespace"], name=meta["name"], timeout=args.timeout_seconds, interval=args.interval_seconds
    )
    return results.RunResult(
        message=f"MigrationRun {meta['name']} Succeeded",
        phase="Succeeded",
        from_revision=status.get("fromRevision"),
        to_revision=status.get("toRevision"),
        backup=(status.get("backup") or {}).get("uri"),
    )
