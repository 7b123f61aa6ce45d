"""A minimal MigrationRun manifest for the security tests that create runs through the apiserver."""

from __future__ import annotations


def run_manifest(namespace: str, name: str, image: str) -> dict:
    return {
        "apiVersion": "alembic-operator.dev/v1alpha1",
        "kind": "MigrationRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "database": {"urlSecretRef": {"name": "app-db", "key": "DATABASE_URL"}},
            "migrate": {"image": image},
            "backup": {"s3": {"bucket": "backups", "endpoint": "https://s3.example.com"}},
        },
    }
