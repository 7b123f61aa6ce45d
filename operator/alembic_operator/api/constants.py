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

#: Annotation a person sets to approve a held restore; its value names them (the chart's admission
#: policy requires the verb ``approve`` on migrationruns and the approving user's name; "true" without it).
ANNOTATION_APPROVE_RESTORE = f"{GROUP}/approve-restore"
#: Reserved: a person's approval of a migration before it starts (same rules as approve-restore).
ANNOTATION_APPROVE_MIGRATION = f"{GROUP}/approve-migration"
#: Reserved: a person's rejection of a migration before it starts (same rules as approve-restore).
ANNOTATION_REJECT_MIGRATION = f"{GROUP}/reject-migration"
#: Every annotation that approves or rejects: the chart's values.admissionPolicy.approvalAnnotations.
APPROVAL_ANNOTATIONS = (ANNOTATION_APPROVE_RESTORE, ANNOTATION_APPROVE_MIGRATION, ANNOTATION_REJECT_MIGRATION)

FINALIZER = f"{GROUP}/finalizer"

#: Step env: the majors (comma-separated) for which the operator image's pg_dump, pg_restore or psql lack
#: SSL, found by the operator at start-up. Steps in the app's image have no client tools to ask (issue 14).
ENV_TOOLS_WITHOUT_SSL = "ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL"

#: Kubernetes object names (and label values) are at most 63 characters.
MAX_NAME = 63

STEPS = ("plan", "backup", "migrate", "verify", "downgrade", "restore")
