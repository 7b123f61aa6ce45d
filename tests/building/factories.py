"""Spec and run factories for builder tests (the reconciler tests have their own, richer world)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from alembic_operator.api import model
from alembic_operator.api.model import MigrationRunSpec, RunView

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
UID = "5f0c6f3e-8a61-4c1e-9d0a-1b2c3d4e5f60"
BASE_SPEC: dict[str, Any] = {
    "database": {"urlSecretRef": {"name": "shop-db"}},
    "migrate": {"image": "registry.example/shop:1.4.2"},
    "backup": {
        "s3": {
            "bucket": "backups",
            "prefix": "pg",
            "endpoint": "http://s3.local:9000",
            "forcePathStyle": True,
            "credentialsSecretRef": {"name": "s3-creds"},
        }
    },
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def make_spec(**over: Any) -> MigrationRunSpec:
    return model.parse_spec(merge(BASE_SPEC, over))


def make_run(spec: MigrationRunSpec | None = None, *, name: str = "shop-1-4-2") -> RunView:
    return RunView(name=name, namespace="shop", uid=UID, spec=spec or make_spec(), creation_timestamp=NOW)
