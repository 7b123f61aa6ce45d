"""The operator's least-privilege RBAC rules: the one list the Helm chart must match.

A test renders the chart and compares its (Cluster)Role with :data:`OPERATOR_RULES`,
and another lists the running operator's effective permissions
(`kubectl auth can-i --list`) against it. There is no ``secrets`` rule at all:
the operator never reads credentials (safety rule 1); Job pods get them by
``secretKeyRef``, which the kubelet resolves.
"""

from __future__ import annotations

from alembic_operator.api import constants

OPERATOR_RULES: list[dict[str, list[str]]] = [
    # Kopf discovers the resources it serves by watching CRDs (read only).
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
    # The runs: watch them, keep a finalizer on them, write their status.
    {
        "apiGroups": [constants.GROUP],
        "resources": [constants.PLURAL],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {"apiGroups": [constants.GROUP], "resources": [f"{constants.PLURAL}/status"], "verbs": ["get", "patch", "update"]},
    # Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
    {"apiGroups": [constants.GROUP], "resources": [f"{constants.PLURAL}/finalizers"], "verbs": ["update"]},
    # The step Jobs it creates, and deletes when a step must be abandoned.
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create", "delete"]},
    # Pods of those Jobs: read only, for exit codes, termination messages and waiting reasons.
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    # Events that tell the story in `kubectl describe mrun`.
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    # The opt-in write fence: only the scale subresource of the workloads it names.
    {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale", "statefulsets/scale"],
        "verbs": ["get", "patch", "update"],
    },
]

#: What an application's hook Job needs to run `alembic-operator run` (create and follow one run). Creating
#: Jobs is what the chart's admission policy asks of whoever creates a MigrationRun (a run starts Jobs);
#: the chart adds ``update`` on the ``scale`` of each writeFence target, by name, when there are any.
HOOK_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": [constants.GROUP], "resources": [constants.PLURAL], "verbs": ["create", "get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
]
