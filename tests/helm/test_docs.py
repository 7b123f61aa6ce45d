"""the README and the examples are one source: included files are verbatim,
examples parse and are what the e2e tests run; the GitOps examples have the promised shape."""

from __future__ import annotations

import re

import yaml

from alembic_operator.api import model
from tests.helm import support


def test_every_included_file_is_verbatim() -> None:
    """Each ``<!-- file: path -->`` block equals the file it names."""
    names = re.findall(r"<!-- file: (\S+) -->", support.DOC.read_text())
    assert len(names) >= 4
    for rel in names:
        assert support.doc_includes(support.REPO / rel) == (support.REPO / rel).read_text(), rel


def test_kubectl_example_is_a_valid_migrationrun() -> None:
    """The kubectl door's MigrationRun passes the model (the e2e test applies it)."""
    run = yaml.safe_load(support.doc_example("migrationrun"))
    assert run["kind"] == "MigrationRun"
    model.parse_spec(run["spec"])


def test_install_example_installs_the_chart_in_this_repo() -> None:
    """The install example is `helm install alembic-operator charts/alembic-operator ... --wait`."""
    text = support.doc_example("install-operator")
    assert "helm install alembic-operator charts/alembic-operator" in text and "--wait" in text


def test_flux_kustomizations_wait_for_migrations_before_the_app() -> None:
    """Migrations: wait true and a MigrationRun health check; app: dependsOn the migrations."""
    docs = list(yaml.safe_load_all((support.GITOPS / "flux" / "kustomizations.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    mig, app = by_name["example-app-migrations"], by_name["example-app"]
    assert all(d["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and d["kind"] == "Kustomization" for d in docs)
    assert mig["spec"]["wait"] is True
    (expr,) = mig["spec"]["healthCheckExprs"]
    assert (expr["apiVersion"], expr["kind"]) == ("alembic-operator.dev/v1alpha1", "MigrationRun")
    assert "Ready" in expr["current"] and "Stalled" in expr["failed"]
    assert app["spec"]["dependsOn"] == [{"name": "example-app-migrations"}]
    for d in docs:
        assert (support.REPO / d["spec"]["path"]).is_dir(), d["spec"]["path"]


def test_argocd_application_names_runs_by_spec() -> None:
    """The Argo CD Application sets migration.nameBy: spec (helm template's revision is always 1)."""
    app = yaml.safe_load((support.GITOPS / "argocd" / "application.yaml").read_text())
    assert app["spec"]["source"]["path"] == "charts/example-app"
    assert app["spec"]["source"]["helm"]["valuesObject"]["migration"]["nameBy"] == "spec"
