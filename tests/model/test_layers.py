"""The pure layers (model, conditions, steps, naming, settings, reconciler, builders) never import I/O."""

import ast
from pathlib import Path

import pytest

import alembic_operator

PACKAGE = Path(alembic_operator.__file__).parent
PURE = [
    "api/model.py",
    "api/schema.py",
    "api/spec.py",
    "api/status.py",
    "api/conditions.py",
    "api/steps.py",
    "controller/naming.py",
    "controller/settings.py",
    "api/crd.py",
    "controller/builders/jobs.py",
    "controller/builders/pods.py",
    *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "controller/reconciler").glob("*.py")),
]
FORBIDDEN = (
    "kopf",
    "kubernetes",
    "boto3",
    "botocore",
    "asyncpg",
    "sqlalchemy",
    "alembic_operator.kube",
    "alembic_operator.job",
    "alembic_operator.controller.handlers",
    "alembic_operator.controller.applying",
    "alembic_operator.job.commands",
)


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io_layer(module):
    bad = {name for name in imports(PACKAGE / module) for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"{module} imports {sorted(bad)}"
