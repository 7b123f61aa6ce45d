"""Names shared by the model, the builders and the handlers: one place, derived from the group."""

from __future__ import annotations

GROUP = "alembic-operator.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MigrationRun"
PLURAL = "migrationruns"
SINGULAR = "migrationrun"
SHORT_NAMES = ["mrun"]

LABEL_RUN = f"{GROUP}/run"
LABEL_STEP = f"{GROUP}/step"
LABEL_DATABASE = f"{GROUP}/database"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "alembic-operator"

#: Annotation a person sets to "true" to approve a held restore.
ANNOTATION_APPROVE_RESTORE = f"{GROUP}/approve-restore"

FINALIZER = f"{GROUP}/finalizer"

#: Kubernetes object names (and label values) are at most 63 characters.
MAX_NAME = 63

STEPS = ("plan", "backup", "migrate", "verify", "restore")
