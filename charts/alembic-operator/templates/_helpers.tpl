{{/* Names and labels shared by every object of the chart. */}}

{{- define "alembic-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name when it already contains the chart name. */}}
{{- define "alembic-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "alembic-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "alembic-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "alembic-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "alembic-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alembic-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "alembic-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "alembic-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end -}}

{{/*
The operator's RBAC rules: exactly alembic_operator.controller.rbac.OPERATOR_RULES, in its order
(tests/helm renders the chart and compares). Split in two because a Role cannot grant
cluster-scoped resources: with watchNamespaces the cluster-scoped rules go to a
ClusterRole and the namespaced ones to a Role in each namespace. No secrets: the
operator never reads credentials; Job pods get them by secretKeyRef.
*/}}
{{- define "alembic-operator.clusterScopedRules" -}}
# Kopf discovers the resources it serves by watching CRDs (read only).
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{- define "alembic-operator.namespacedRules" -}}
- apiGroups: ["alembic-operator.dev"]
  resources: ["migrationruns"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["alembic-operator.dev"]
  resources: ["migrationruns/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["alembic-operator.dev"]
  resources: ["migrationruns/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch", "update"]
{{- end -}}
