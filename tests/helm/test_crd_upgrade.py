"""`helm upgrade` applies a changed MigrationRun CRD, and `helm uninstall` keeps it.

Helm never upgrades a chart's crds/ folder; the chart renders the CRD from templates/crds.yaml
instead. This test installs the chart as it is (version 0.1.0) into a control plane of its own
(the session's cluster has its CRD managed outside Helm), then upgrades to a copy whose CRD has
one more spec field and printer column, and asks the apiserver what it serves: `kubectl explain`
(the apiserver's published OpenAPI) and server-side validation of a run using the new field.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed.cluster import Cluster
from tests.helm import support
from tests.helm.support import OPERATOR_CHART, helm, kubectl

CRD = "migrationruns.alembic-operator.dev"
NEW_FIELD = "upgradeProbe"


def _chart_with_a_changed_crd(dest: Path) -> Path:
    """A copy of the chart, version 0.1.1, whose CRD has spec.upgradeProbe and a printer column for it."""
    chart = support.operator_chart_at(dest, "0.1.1")
    (path,) = (chart / "files" / "crds").glob("*.yaml")
    crd = yaml.safe_load(path.read_text())
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"][NEW_FIELD] = {"type": "string", "description": "Added by the upgrade test."}
    version["additionalPrinterColumns"].append({"name": "Probe", "type": "string", "jsonPath": f".spec.{NEW_FIELD}"})
    path.write_text(yaml.safe_dump(crd, sort_keys=False))
    return chart


def _served_columns(kubeconfig: Path) -> list[str]:
    crd = yaml.safe_load(kubectl(kubeconfig, "get", "crd", CRD, "-o", "yaml").stdout)
    return [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def _explains(kubeconfig: Path) -> bool:
    proc = kubectl(kubeconfig, "explain", f"migrationrun.spec.{NEW_FIELD}", check=False)
    return proc.returncode == 0 and "Added by the upgrade test." in proc.stdout


def _run_with_the_new_field(namespace: str) -> str:
    example = yaml.safe_load(support.doc_example("migrationrun"))
    example["metadata"]["namespace"] = namespace
    example["spec"][NEW_FIELD] = "v2"
    return yaml.safe_dump(example)


def test_helm_upgrade_applies_a_changed_crd_and_uninstall_keeps_it(tmp_path: Path) -> None:
    with Cluster() as cluster:
        cluster.start(tmp_path / "cluster")
        kc, ns = cluster.kubeconfig, "alembic-operator"
        helm("install", "ao", OPERATOR_CHART, "--namespace", ns, "--create-namespace", kubeconfig=kc)
        # polled, not `kubectl wait`: a CRD without status.conditions yet makes that fail at once (testbed/operating.py)
        established = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        support.wait_for(lambda: kubectl(kc, "get", "crd", CRD, "-o", established).stdout == "True", 60, "Established")
        assert "Probe" not in _served_columns(kc) and not _explains(kc)
        refused = kubectl(
            kc,
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
            input=_run_with_the_new_field(ns),
            check=False,
        )
        assert refused.returncode != 0 and f'unknown field "spec.{NEW_FIELD}"' in refused.stderr, refused.stderr

        helm("upgrade", "ao", _chart_with_a_changed_crd(tmp_path), "--namespace", ns, kubeconfig=kc)
        assert _served_columns(kc)[-1] == "Probe"
        support.wait_for(lambda: _explains(kc), 60, f"kubectl explain migrationrun.spec.{NEW_FIELD}")
        accepted = kubectl(
            kc, "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=_run_with_the_new_field(ns)
        )
        assert "created (server dry run)" in accepted.stdout, accepted.stdout
        history = helm("history", "ao", "--namespace", ns, "-o", "yaml", kubeconfig=kc).stdout
        assert [h["chart"] for h in yaml.safe_load(history)] == ["alembic-operator-0.1.0", "alembic-operator-0.1.1"]

        helm("uninstall", "ao", "--namespace", ns, "--wait", kubeconfig=kc)
        assert "Probe" in _served_columns(kc), "crds.keep: the CRD outlives the release"
