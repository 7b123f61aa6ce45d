"""Argo CD's Lua health check and kstatus (Flux) classify MigrationRun status right.

The Lua in examples/gitops/argocd/health.lua runs in a real Lua interpreter
(lupa) exactly as Argo CD runs it (global ``obj``, returned table); kstatus is
the real sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute (tools/kstatus).
Here the statuses are built with the operator's own model and condition
factories; tests/helm/test_operator_e2e.py classifies statuses the running
operator wrote.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.helm import statuses, support


@pytest.mark.parametrize("phase", ["Succeeded"])
def test_succeeded_is_healthy_and_current(phase: str) -> None:
    """Succeeded: Argo CD Healthy, kstatus Current."""
    obj = statuses.constructed(phase, message="migrated 0004 -> 0005")
    assert support.argocd_health(obj) == {"status": "Healthy", "message": "Succeeded: migrated 0004 -> 0005"}
    assert support.kstatus(obj) == "Current"


@pytest.mark.parametrize("phase", sorted(statuses.FAILED_PHASES))
def test_failures_and_held_rollbacks_are_degraded_and_failed(phase: str) -> None:
    """Failed, RolledBack, RollbackFailed and RollbackHeld: Degraded with the message; kstatus Failed (Stalled)."""
    obj = statuses.constructed(phase, message="the migration raised; restored from s3://b/x")
    health = support.argocd_health(obj)
    assert health == {"status": "Degraded", "message": f"{phase}: the migration raised; restored from s3://b/x"}
    assert support.kstatus(obj) == "Failed"


@pytest.mark.parametrize("phase", statuses.IN_PROGRESS_PHASES)
def test_phases_under_way_are_progressing_and_in_progress(phase: str) -> None:
    """Every non-terminal phase: Progressing; kstatus InProgress (Reconciling=True)."""
    obj = statuses.constructed(phase)
    assert support.argocd_health(obj)["status"] == "Progressing"
    assert support.kstatus(obj) == "InProgress"


def test_a_run_without_status_is_progressing_for_argo_cd() -> None:
    """No status yet (the operator has not seen the run): Progressing, not Healthy."""
    obj = statuses.constructed(None)
    assert support.argocd_health(obj)["status"] == "Progressing"


def test_kstatus_counts_a_run_without_conditions_as_current() -> None:
    """kstatus' documented rule: no conditions at all is Current — why the operator sets them at once
    and why the Flux example adds healthCheckExprs that require Ready=True."""
    assert support.kstatus(statuses.constructed(None)) == "Current"


def test_a_status_for_an_older_generation_is_progressing_and_in_progress() -> None:
    """observedGeneration behind metadata.generation: Progressing and InProgress even if it said Succeeded."""
    obj = statuses.constructed("Succeeded", generation=2, observed=1)
    assert support.argocd_health(obj)["status"] == "Progressing"
    assert support.kstatus(obj) == "InProgress"


def test_argocd_cm_snippet_carries_health_lua_verbatim() -> None:
    """examples/gitops/argocd/argocd-cm.yaml holds health.lua under the MigrationRun customization key."""
    cm = yaml.safe_load((support.GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    key = "resource.customizations.health.alembic-operator.dev_MigrationRun"
    assert cm["data"][key] == support.ARGOCD_LUA.read_text()


# -- the approve-restore resource action (examples/gitops/argocd/approve-restore*.lua) -------------

APPROVE = "alembic-operator.dev/approve-restore"
ACTIONS_KEY = "resource.customizations.actions.alembic-operator.dev_MigrationRun"


def _run_lua(script: str, obj: dict[str, Any]) -> Any:
    """Run an action's Lua as Argo CD does (a global ``obj``), and return its result as Python data."""
    import lupa

    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = support._to_lua(lua, json.loads(json.dumps(obj)))
    return _from_lua(lua.execute((support.GITOPS / "argocd" / script).read_text()))


def _from_lua(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _from_lua(v) for k, v in value.items()}
    return value


def _discovered(obj: dict[str, Any]) -> bool:
    """Whether Argo CD offers approve-restore on ``obj`` (enabled in the discovery's result)."""
    actions = _run_lua("approve-restore-discovery.lua", obj)
    return not actions["approve-restore"]["disabled"]


def test_approve_restore_is_enabled_only_on_a_held_run_not_yet_approved() -> None:
    """Discovery: enabled on RollbackHeld; disabled on every other phase, no status, or an approved run."""
    assert _discovered(statuses.constructed("RollbackHeld"))
    others = ["Succeeded", *sorted(set(statuses.FAILED_PHASES) - {"RollbackHeld"}), *statuses.IN_PROGRESS_PHASES]
    assert not any(_discovered(statuses.constructed(phase)) for phase in others)
    assert not _discovered(statuses.constructed(None))
    approved = statuses.constructed("RollbackHeld")
    approved["metadata"]["annotations"] = {APPROVE: "someone"}
    assert not _discovered(approved)


def test_approve_restore_names_argo_cds_account_and_keeps_the_other_annotations() -> None:
    """The action sets the annotation to the ServiceAccount Argo CD patches as (the policy wants the requester)."""
    held = statuses.constructed("RollbackHeld")
    held["metadata"]["annotations"] = {"team": "shop"}
    patched = _run_lua("approve-restore.lua", held)
    assert patched["metadata"]["annotations"] == {
        "team": "shop",
        APPROVE: "system:serviceaccount:argocd:argocd-server",
    }
    assert patched["status"]["phase"] == "RollbackHeld" and patched["metadata"]["name"] == "shop-1"
    bare = _run_lua("approve-restore.lua", statuses.constructed("RollbackHeld"))
    assert bare["metadata"]["annotations"][APPROVE] == "system:serviceaccount:argocd:argocd-server"


def test_approve_restore_refuses_a_run_that_is_not_held() -> None:
    """Run by hand on a finished run, the action fails instead of pre-approving a later restore."""
    import lupa

    with pytest.raises(lupa.LuaError, match="not RollbackHeld"):
        _run_lua("approve-restore.lua", statuses.constructed("RolledBack"))


def test_argocd_cm_snippet_carries_the_action_lua_verbatim() -> None:
    """argocd-cm.yaml holds both Lua files under the MigrationRun actions key."""
    cm = yaml.safe_load((support.GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    actions = yaml.safe_load(cm["data"][ACTIONS_KEY])
    argocd = support.GITOPS / "argocd"
    assert actions["discovery.lua"] == (argocd / "approve-restore-discovery.lua").read_text()
    assert actions["definitions"] == [
        {"name": "approve-restore", "action.lua": (argocd / "approve-restore.lua").read_text()}
    ]
