"""The charts' README.md are helm-docs output of their values.yaml, and Chart.yaml carries what Artifact Hub shows.

helm-docs (built from its Go module by tools/helm-docs/build.sh) regenerates both READMEs in a copy of
charts/; they must equal the committed ones (edit values.yaml's ``# --`` comments or README.md.gotmpl,
then run `make chart-docs`). Every value in the table has a description. The icon is icon.svg as a data
URI, and the Artifact Hub CRD example is a MigrationRun the model accepts.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from alembic_operator.api import model
from tests.helm import support

CHARTS = ("alembic-operator", "example-app")
"""Charts whose README helm-docs writes (alembic-operator-hook's README is prose about its templates)."""


def helm_docs() -> Path:
    """tools/helm-docs/build.sh's binary (built once, cached by its go.mod); a failed build fails loudly."""
    proc = subprocess.run(
        ["bash", str(support.REPO / "tools" / "helm-docs" / "build.sh")], stdout=subprocess.PIPE, text=True
    )
    assert proc.returncode == 0, "tools/helm-docs/build.sh failed; run it to see why"
    return Path(proc.stdout.strip().splitlines()[-1])


def test_the_chart_readmes_are_what_helm_docs_writes_and_document_every_value(tmp_path: Path) -> None:
    copy = tmp_path / "charts"
    shutil.copytree(support.REPO / "charts", copy)
    for chart in CHARTS:
        (copy / chart / "README.md").unlink()
    subprocess.run([str(helm_docs()), "-g", ",".join(CHARTS), "-l", "warning"], cwd=copy, check=True)
    for chart in CHARTS:
        written = (copy / chart / "README.md").read_text()
        assert written == (support.REPO / "charts" / chart / "README.md").read_text(), (
            f"charts/{chart}/README.md drifts from its values.yaml: run `make chart-docs`"
        )
        rows = [line for line in written.splitlines() if line.startswith("| ") and "`" in line]
        assert rows, f"charts/{chart}/README.md has no values table"
        undocumented = [row.split("|")[1].strip() for row in rows if not row.rstrip(" |").split("|")[-1].strip()]
        assert undocumented == [], f"values of {chart} without a `# --` comment: {undocumented}"


def test_chart_yaml_has_the_icon_and_a_valid_artifact_hub_crd_example() -> None:
    chart = support.REPO / "charts" / "alembic-operator"
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    prefix = "data:image/svg+xml;base64,"
    assert meta["icon"].startswith(prefix)
    svg = base64.b64decode(meta["icon"][len(prefix) :])
    assert svg == (chart / "icon.svg").read_bytes(), "Chart.yaml's icon is not icon.svg"
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    notes = meta["annotations"]
    assert notes["artifacthub.io/license"] == "Apache-2.0" == _license_of_the_repository()
    assert notes["artifacthub.io/operator"] == "true"
    (crd,) = yaml.safe_load(notes["artifacthub.io/crds"])
    served = yaml.safe_load(next((support.REPO / "crds").glob("*.yaml")).read_text())
    assert (crd["kind"], crd["name"]) == (served["spec"]["names"]["kind"], served["metadata"]["name"])
    (example,) = yaml.safe_load(notes["artifacthub.io/crdsExamples"])
    assert (example["apiVersion"], example["kind"]) == ("alembic-operator.dev/v1alpha1", "MigrationRun")
    model.parse_spec(example["spec"])  # raises on a field or value the CRD's model refuses


def _license_of_the_repository() -> str:
    text = (support.REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text
    return "Apache-2.0"
