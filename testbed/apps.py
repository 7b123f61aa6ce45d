"""An application on the test bed: a namespace, its database and bucket, the Secrets a run
refers to, and helpers to apply MigrationRuns and follow them. Used by the e2e tests and the demo."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import kubernetes.watch
import yaml

from alembic_operator.api import constants
from testbed.cluster import Cluster
from testbed.s3 import S3Server

TERMINAL = {"Succeeded", "Failed", "RolledBack", "RollbackFailed"}


@dataclass
class App:
    """One application: a namespace, its database and bucket, and the Secrets a run refers to."""

    cluster: Cluster
    namespace: str
    database_url: str
    s3: S3Server
    bucket: str
    created: list[str] = field(default_factory=list)

    def create_secrets(self) -> None:
        """The run's Secrets: ``db`` (DATABASE_URL) and ``s3`` (the access keys)."""
        self._create_secret("db", DATABASE_URL=self.database_url)
        self._create_secret("s3", AWS_ACCESS_KEY_ID=self.s3.access_key, AWS_SECRET_ACCESS_KEY=self.s3.secret_key)

    def _create_secret(self, name: str, **literals: str) -> None:
        pairs = [f"--from-literal={key}={value}" for key, value in literals.items()]
        self.cluster.kubectl("-n", self.namespace, "create", "secret", "generic", name, *pairs)

    def manifest(self, name: str, *, image: str = "example-app:dev", spec: dict[str, Any] | None = None) -> dict:
        base: dict[str, Any] = {
            "apiVersion": "alembic-operator.dev/v1alpha1",
            "kind": "MigrationRun",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "database": {"urlSecretRef": {"name": "db", "key": "DATABASE_URL"}},
                "migrate": {"image": image},
                "backup": {
                    "s3": {
                        "bucket": self.bucket,
                        "endpoint": self.s3.endpoint,
                        "region": self.s3.region,
                        "forcePathStyle": True,
                        "credentialsSecretRef": {"name": "s3"},
                    }
                },
            },
        }
        _merge(base["spec"], spec or {})
        return base

    def apply(self, manifest: dict) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        self.created.append(manifest["metadata"]["name"])

    def get(self, name: str) -> dict:
        """The run as the API returns it (through the client: tests poll this, a kubectl process each
        time would cost the CPU the bed's other workers wait for)."""
        with self.cluster.api_client() as api:
            custom = kubernetes.client.CustomObjectsApi(api)
            run: dict = custom.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, self.namespace, constants.PLURAL, name
            )
        return run

    def wait(self, name: str, phases: Iterable[str] = TERMINAL, timeout: float = 180) -> dict:
        """Wait until the run reaches one of ``phases``; fail with its status otherwise.

        Watches the run (list, then watch from that resourceVersion; again after a watch ends or
        expires) instead of polling ``kubectl get``: it sees a phase the moment the operator writes
        it and spawns no process per poll (those cost CPU the bed's other workers are waiting for)."""
        wanted = set(phases)
        deadline = time.monotonic() + timeout
        run: dict = {}
        selector = f"metadata.name={name}"
        args = (constants.GROUP, constants.VERSION, self.namespace, constants.PLURAL)
        with self.cluster.api_client() as api:
            custom = kubernetes.client.CustomObjectsApi(api)
            while (remaining := deadline - time.monotonic()) > 0:
                listed = custom.list_namespaced_custom_object(*args, field_selector=selector)
                run = next(iter(listed["items"]), run)
                if (run.get("status") or {}).get("phase") in wanted:
                    return run
                watch = kubernetes.watch.Watch()
                try:
                    for event in watch.stream(
                        custom.list_namespaced_custom_object,
                        *args,
                        field_selector=selector,
                        resource_version=listed["metadata"]["resourceVersion"],
                        timeout_seconds=max(1, min(int(remaining), 30)),
                    ):
                        if event["type"] in ("ADDED", "MODIFIED"):
                            run = event["object"]
                            if (run.get("status") or {}).get("phase") in wanted:
                                return run
                except kubernetes.client.ApiException as error:
                    if error.status != 410:  # 410 Gone: the resourceVersion expired; list again
                        raise
                finally:
                    watch.stop()
        raise AssertionError(
            f"{name} did not reach {sorted(wanted)} in {timeout}s: {json.dumps(run.get('status'), indent=1)}"
        )

    def wait_event(self, name: str, reason: str, *, timeout: float = 30) -> list[tuple[str, str, str]]:
        """The run's Events once one has ``reason``: the operator posts a pass's Events right after its
        status patch, so a reader that just saw the phase may be a moment ahead of the last Event."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name)
            if any(r == reason for _t, r, _m in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the run's Events, oldest first."""
        out = self.cluster.kubectl(
            "-n",
            self.namespace,
            "get",
            "events",
            "-o",
            "json",
            f"--field-selector=involvedObject.name={name},involvedObject.kind=MigrationRun",
        )
        items = json.loads(out.stdout)["items"]
        # Timestamps have one-second resolution; etcd's resourceVersion orders creations exactly.
        items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e.get("message", "")) for e in items]

    def jobs(self) -> list[dict]:
        return json.loads(self.cluster.kubectl("-n", self.namespace, "get", "jobs", "-o", "json").stdout)["items"]


def _merge(into: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
