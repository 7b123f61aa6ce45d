"""`make demo`: the whole product on the local test bed, narrated.

1. bring the bed up in a network namespace of its own: etcd, kube-apiserver,
   kube-controller-manager, the real node (containerd + kubelet, the images
   ``make image`` built), PostgreSQL 15, an S3 server;
2. install the CRD and RBAC, start the operator as its own ServiceAccount;
3. apply a MigrationRun for the example app on an empty database, follow it
   phase by phase until it Succeeds;
4. add rows, then apply a second run whose migration deletes rows: verify
   catches it and the backup is restored;
5. show `kubectl get mrun`, where the backups are, and the second run's Events;
6. the same migration with spec.rehearsal: caught on a scratch copy, the real
   database's row counts and schema fingerprint unchanged (checked before and after);
7. a run with spec.approval.required waits in AwaitingApproval until
   `kubectl alembic approve-migration`, then Succeeds (scenes in :mod:`testbed.demo_scenes`);
8. tear everything down. The exit status is 1 when a scene did not end as shown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from testbed import demo_scenes, operating, tools
from testbed.apps import App
from testbed.demo_scenes import console, follow, kubectl_show
from testbed.node import NodeBed
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server

EXAMPLE = tools.REPO / "alembic" / "example"


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="alembic-operator-demo-", dir="/tmp"))
    console.rule("alembic-operator demo")
    console.print(f"test bed in {workdir}")
    bed, pg, s3, operator = NodeBed(workdir), PostgresServer(15), S3Server(), None
    try:
        console.print("starting etcd, kube-apiserver, kube-controller-manager, the node (containerd, kubelet) ...")
        bed.start()
        assert bed.cluster is not None and bed.node is not None
        cluster = bed.cluster
        operating.register_images(bed.node)
        console.print("starting PostgreSQL 15 and the S3 server (versitygw) ...")
        pg.start(workdir / "pg")
        s3.start(workdir / "s3")
        kubectl_show(cluster, "get", "nodes")
        operator = operating.OperatorProcess(cluster, workdir / "operator")
        operator.workdir.mkdir(parents=True, exist_ok=True)
        operator.setup()
        operator.start()
        kubectl_show(cluster, "get", "crd")
        console.print("operator running as ServiceAccount alembic-operator-system/alembic-operator")

        cluster.kubectl("create", "namespace", "shop")
        dbname = pg.create_database("shop")
        app = App(
            cluster=cluster,
            namespace="shop",
            database_url=pg.url(dbname),
            s3=s3,
            bucket=s3.create_bucket("shop-backups"),
        )
        app.create_secrets()

        console.rule("release 1: the example app on an empty database")
        app.apply(app.manifest("shop-release-1"))
        follow(app, "shop-release-1")

        console.print("the app writes 2,000 tasks ...")
        env = {**os.environ, "DATABASE_URL": pg.url(dbname)}
        subprocess.run(
            [sys.executable, "-m", "taskapp.seed", "--rows", "2000"],
            cwd=EXAMPLE,
            env=env,
            check=True,
            capture_output=True,
        )

        console.rule("release 2: a migration that deletes rows")
        app.apply(app.manifest("shop-release-2", image="example-app:deletes-rows"))
        run = follow(app, "shop-release-2")
        violations = (run["status"].get("rowCounts") or {}).get("violations") or []
        console.print(f"  verify found: {'; '.join(violations)}")
        tasks = pg.scalar("SELECT count(*) FROM task", dbname)
        console.print(f"  rows in task after the restore: {tasks}")

        console.rule("what on-call sees")
        kubectl_show(cluster, "get", "mrun", "-n", "shop")
        console.print("[bold]backups:[/bold]")
        for name in ("shop-release-1", "shop-release-2"):
            backup = app.get(name)["status"].get("backup") or {}
            console.print(
                f"  {name}: {backup.get('uri')} ({backup.get('size')}, sha256 {backup.get('sha256', '')[:16]}…)"
            )
        kubectl_show(cluster, "describe", "mrun", "-n", "shop", "shop-release-2")

        console.rule("release 2 again, rehearsed first (spec.rehearsal): caught on a copy")
        caught = demo_scenes.rehearsal_catches(cluster, app, pg, dbname)
        console.rule("release 3 with spec.approval.required: a person approves it")
        approved = demo_scenes.approval(cluster, app, pg, dbname)
        console.rule("done" if caught and approved else "[red]a scene did not end as shown[/red]")
        return 0 if caught and approved else 1
    finally:
        console.print("tearing down ...")
        if operator is not None:
            operator.stop()
        s3.stop()
        pg.destroy()
        left = bed.stop()
        if left:
            console.print(f"[red]left by the bed:[/red] {left}")


if __name__ == "__main__":
    sys.exit(main())
