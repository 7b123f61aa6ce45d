"""Generate the MigrationRun CRD from :mod:`alembic_operator.api.model`.

Usage::

    python -m alembic_operator.api.crd            # write crds/alembic-operator.dev_migrationruns.yaml
    python -m alembic_operator.api.crd --check    # exit 1 with a diff when the file drifts from the model
    python -m alembic_operator.api.crd --stdout   # print it

Flow:

1. pydantic renders each model's JSON schema (aliases, descriptions, defaults).
2. :func:`structural` turns it into a Kubernetes structural schema: every
   ``$ref`` inlined, ``anyOf [X, null]`` (Optional) flattened to ``X``,
   ``title`` and ``default: null`` dropped, free-form ``dict[str, Any]``
   becoming ``x-kubernetes-preserve-unknown-fields``, ``const`` → ``enum``.
3. :func:`build_crd` wraps spec and status into the CRD with the status
   subresource, printer columns and the immutable-spec CEL rule (on the spec
   model). Status carries no defaults: only the operator writes it.

Must not: talk to a cluster. Validating the output against a real
apiserver is the test bed's job.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

from alembic_operator.api import constants, model

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / f"{constants.GROUP}_{constants.PLURAL}.yaml"
HEADER = "# Generated from alembic_operator/api/model.py by `python -m alembic_operator.api.crd`; do not edit.\n"

_DROP = {"title", "$defs"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Where the run is."},
    {
        "name": "From",
        "type": "string",
        "jsonPath": ".status.fromRevision",
        "description": "Alembic revision before the migration.",
    },
    {
        "name": "To",
        "type": "string",
        "jsonPath": ".status.toRevision",
        "description": "Alembic revision after the migration.",
    },
    {"name": "Backup", "type": "string", "jsonPath": ".status.backup.size", "description": "Size of the backup."},
    {
        "name": "Progress",
        "type": "string",
        "jsonPath": ".status.progress.summary",
        "description": "How far the running (or last) backup or restore has streamed.",
    },
    {
        "name": "Approval",
        "type": "string",
        "jsonPath": ".status.approval.state",
        "description": "A person's decision on the migration: Waiting, Approved or Rejected.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.message",
        "priority": 1,
        "description": "What happened.",
    },
]


class SchemaError(ValueError):
    """The model produced a schema Kubernetes cannot take (e.g. a union of two types)."""


def structural(
    schema: dict[str, Any], defs: dict[str, Any], *, keep_defaults: bool = True, path: str = ""
) -> dict[str, Any]:
    """Turn one pydantic JSON-schema node into a structural-schema node (recursively)."""
    node = dict(schema)
    # 1. inline $ref / single allOf / Optional anyOf, keeping sibling keys (they win).
    while True:
        if "$ref" in node:
            ref = node.pop("$ref")
            target = copy.deepcopy(defs[ref.split("/")[-1]])
            node = {**target, **node}
            continue
        if "allOf" in node and len(node["allOf"]) == 1:
            inner = node.pop("allOf")[0]
            node = {**inner, **node}
            continue
        if "anyOf" in node:
            options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
            if len(options) != 1:
                raise SchemaError(f"{path or '<root>'}: unions are not structural: {options}")
            node = {**options[0], **node}
            continue
        break
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "default" and (value is None or not keep_defaults):
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out["properties"] = {
                name: structural(sub, defs, keep_defaults=keep_defaults, path=f"{path}.{name}")
                for name, sub in value.items()
            }
            continue
        if key == "items":
            out["items"] = structural(value, defs, keep_defaults=keep_defaults, path=f"{path}[]")
            continue
        if key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is False:
                continue  # not allowed in structural schemas; the apiserver prunes unknown fields anyway
            else:
                out["additionalProperties"] = structural(value, defs, keep_defaults=keep_defaults, path=f"{path}{{}}")
            continue
        out[key] = value
    if "type" not in out:
        if "properties" in out:
            out["type"] = "object"
        elif "enum" in out and all(isinstance(v, str) for v in out["enum"]):
            out["type"] = "string"
        else:
            raise SchemaError(f"{path or '<root>'}: no type: {node}")
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


_ORDER = [
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "pattern",
    "items",
    "additionalProperties",
    "properties",
    "required",
]


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in _ORDER if k in node] + sorted(k for k in node if k not in _ORDER)
    return {k: node[k] for k in keys}


def _model_schema(cls: type, *, keep_defaults: bool) -> dict[str, Any]:
    raw = cls.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    return structural(raw, raw.get("$defs", {}), keep_defaults=keep_defaults, path=cls.__name__)


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict."""
    spec_schema = _model_schema(model.MigrationRunSpec, keep_defaults=True)
    status_schema = _model_schema(model.MigrationRunStatus, keep_defaults=False)
    root = {
        "description": (model.MigrationRun.__doc__ or "").strip(),
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{constants.PLURAL}.{constants.GROUP}",
            "labels": {"app.kubernetes.io/name": "alembic-operator"},
        },
        "spec": {
            "group": constants.GROUP,
            "names": {
                "kind": constants.KIND,
                "listKind": f"{constants.KIND}List",
                "plural": constants.PLURAL,
                "singular": constants.SINGULAR,
                "shortNames": list(constants.SHORT_NAMES),
                "categories": ["alembic-operator"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": constants.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text committed under crds/."""
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alembic_operator.api.crd", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the file drifts")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    parser.add_argument("--output", type=Path, default=CRD_PATH, help=f"file to write (default {CRD_PATH})")
    args = parser.parse_args(argv)
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current == text:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), str(args.output), "generated from the model"
            )
        )
        print(f"\n{args.output} drifts from the model: run `python -m alembic_operator.api.crd`", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
