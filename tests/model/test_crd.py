"""The committed CRD matches the model and is a structural schema Kubernetes accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from alembic_operator.api import constants, crd


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return crd.build_crd()


@pytest.fixture(scope="module")
def schema(generated) -> dict[str, Any]:
    return generated["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_the_committed_crd_matches_the_model():
    committed = crd.CRD_PATH.read_text(encoding="utf-8")
    assert committed == crd.render(), "crds/ drifts from the model: run `python -m alembic_operator.api.crd`"


def test_the_check_mode_passes_on_the_committed_file_and_fails_with_a_diff_on_drift(tmp_path, capsys):
    assert crd.main(["--check"]) == 0
    stale = tmp_path / "crd.yaml"
    stale.write_text(crd.render().replace("Where the run is.", "Stale."), encoding="utf-8")
    assert crd.main(["--check", "--output", str(stale)]) == 1
    assert "+      description: Where the run is." in capsys.readouterr().out


def test_the_committed_file_is_valid_yaml_of_one_crd():
    doc = yaml.safe_load(crd.CRD_PATH.read_text(encoding="utf-8"))
    assert doc["kind"] == "CustomResourceDefinition"
    assert doc["metadata"]["name"] == f"{constants.PLURAL}.{constants.GROUP}"


def test_names_scope_and_version(generated):
    spec = generated["spec"]
    assert spec["group"] == "alembic-operator.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "MigrationRun" and spec["names"]["plural"] == "migrationruns"
    assert spec["names"]["shortNames"] == ["mrun"]
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_the_schema_is_structural(schema):
    forbidden = {"$ref", "anyOf", "allOf", "oneOf", "not", "$defs", "definitions", "title", "const"}
    for path, node in walk(schema):
        assert not forbidden & set(node), f"{path}: {forbidden & set(node)}"
        assert "type" in node, f"{path} has no type"
        assert node.get("nullable") is not True, f"{path} is nullable"
        if node["type"] == "object" and path != ".metadata":  # the apiserver owns metadata's schema
            assert (
                "properties" in node
                or "additionalProperties" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
            ), f"{path}: untyped object"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        for name in node.get("required") or []:
            assert name in node["properties"], f"{path}: required {name} is not a property"


def test_every_spec_and_status_field_has_a_description(schema):
    for root in ("spec", "status"):
        for path, node in walk(schema["properties"][root], root):
            if path.endswith("[]") or path.endswith("{}"):
                continue
            assert node.get("description"), f"{path} has no description"


def test_defaults_are_valid_and_only_in_spec(schema):
    spec = schema["properties"]["spec"]["properties"]
    assert spec["migrate"]["properties"]["target"]["default"] == "head"
    assert spec["migrate"]["properties"]["command"]["default"] == ["alembic-operator", "migrate"]
    assert spec["timeouts"]["default"] == {}
    assert spec["timeouts"]["properties"]["pendingSeconds"]["default"] == 600
    assert spec["backup"]["properties"]["retention"]["properties"]["keepLast"]["default"] == 10
    assert spec["database"]["properties"]["urlSecretRef"]["properties"]["key"]["default"] == "DATABASE_URL"
    for path, node in walk(schema["properties"]["status"], "status"):
        assert "default" not in node, path


def test_enums_minimums_patterns_and_required_fields_reach_the_schema(schema):
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["database", "migrate", "backup"]
    backup = spec["properties"]["backup"]["properties"]
    assert backup["format"]["enum"] == ["custom", "directory"]
    assert backup["jobs"]["minimum"] == 1
    assert backup["compression"]["pattern"].startswith("^(none|")
    assert backup["s3"]["properties"]["serverSideEncryption"]["enum"] == ["AES256", "aws:kms"]
    assert backup["s3"]["required"] == ["bucket"]
    assert spec["properties"]["migrate"]["required"] == ["image"]
    phase = schema["properties"]["status"]["properties"]["phase"]
    assert "RollbackHeld" in phase["enum"] and phase["type"] == "string"


def test_free_form_core_objects_preserve_unknown_fields(schema):
    pod = schema["properties"]["spec"]["properties"]["podTemplate"]["properties"]
    assert pod["resources"]["x-kubernetes-preserve-unknown-fields"] is True
    assert pod["tolerations"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert pod["nodeSelector"]["additionalProperties"] == {"type": "string"}


def test_the_spec_is_immutable_after_create(schema):
    rules = schema["properties"]["spec"]["x-kubernetes-validations"]
    assert {
        "rule": "self == oldSelf",
        "message": "spec is immutable: create a new MigrationRun for a new release",
    } in rules


def test_jobs_need_the_directory_format_in_the_schema_too(schema):
    rules = schema["properties"]["spec"]["properties"]["backup"]["x-kubernetes-validations"]
    assert rules[0]["rule"] == "!has(self.jobs) || self.format == 'directory'"


def test_conditions_are_a_map_list_keyed_by_type(schema):
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "reason", "lastTransitionTime"}
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def test_printer_columns_show_phase_revisions_backup_size_age_and_message(generated):
    columns = {c["name"]: c for c in generated["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["From"]["jsonPath"] == ".status.fromRevision"
    assert columns["To"]["jsonPath"] == ".status.toRevision"
    assert columns["Backup"]["jsonPath"] == ".status.backup.size"
    assert columns["Age"]["type"] == "date"
    assert columns["Message"]["priority"] == 1


def test_printer_column_paths_exist_in_the_schema(generated, schema):
    for column in generated["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        assert "type" in node


def test_a_union_type_is_refused_with_the_field_path():
    with pytest.raises(crd.SchemaError, match=r"x\.y"):
        crd.structural({"properties": {"y": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}, {}, path="x")
