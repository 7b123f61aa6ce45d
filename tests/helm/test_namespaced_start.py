"""A namespaced install (`watchNamespaces`) reconciles at once, not after Kopf gives up listing namespaces.

Kopf, told `--namespace`, first lists and watches all namespaces; a namespaced install's Role forbids
that, and Kopf fell back to the named namespaces only about a minute later. The operator now
starts namespaced with scanning disabled (controller/main.py): a run waiting in the namespace is
picked up within seconds of the operator's pod being ready.
"""

from __future__ import annotations

import time

from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server
from tests.helm import bed, support
from tests.helm.support import kubectl

#: Well above the few seconds a start takes on the bed, well below the minute of the fallback.
FIRST_RECONCILE_WITHIN = 20.0


def test_a_namespaced_operator_reconciles_a_waiting_run_within_seconds(
    cluster: Cluster, kubelet: Node, pg15: PostgresServer, s3: S3Server, namespace: str
) -> None:
    bed.register_app_images(kubelet)
    data = bed.make_data(cluster, pg15, s3, namespace)
    bed.ensure_crd(cluster)
    kubectl(cluster.kubeconfig, "-n", namespace, "apply", "-f", "-", input=bed.doc_run(data, name="waiting"))
    with bed.installed_operator(cluster, "--set", f"watchNamespaces={{{namespace}}}"):
        ready = time.monotonic()
        support.wait_for(
            lambda: ((bed.get_run(cluster, namespace, "waiting") or {}).get("status") or {}).get("phase"),
            120,
            "the first reconcile of the waiting run",
            interval=0.2,
        )
        took = time.monotonic() - ready
        print(f"\nfirst reconcile {took:.1f}s after `helm install --wait` returned")
        assert took < FIRST_RECONCILE_WITHIN, f"the first reconcile took {took:.1f}s"
        assert bed.follow(cluster, namespace, "waiting").phase == "Succeeded"
