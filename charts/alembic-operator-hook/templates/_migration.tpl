{{/*
alembic-operator-hook: the pre-install/pre-upgrade migration hook of an
application chart. Use from the app chart:

  {{ include "alembic-operator-hook.migration" . }}

with the `migration:` values block documented in this chart's README.md.
Renders a ServiceAccount, Role, RoleBinding and ConfigMap (weights -10..-8)
and the Job (weight 0) that runs `alembic-operator run`, which creates the
MigrationRun and follows it: the Job, and so `helm upgrade`, fails when the
run ends in anything but Succeeded.
*/}}

{{- define "alembic-operator-hook.values" -}}
{{- $m := default dict .Values.migration -}}
{{- toYaml $m -}}
{{- end -}}

{{/* The application image the migration runs in. */}}
{{- define "alembic-operator-hook.image" -}}
{{- $m := default dict .Values.migration -}}
{{- if $m.image -}}
{{- $m.image -}}
{{- else if and .Values.image .Values.image.repository -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- else -}}
{{- fail "alembic-operator-hook: set migration.image (or image.repository and image.tag)" -}}
{{- end -}}
{{- end -}}

{{/* Base name of the hook's objects: <release>-migration. */}}
{{- define "alembic-operator-hook.fullname" -}}
{{- printf "%s-migration" (.Release.Name | trunc 53 | trimSuffix "-") -}}
{{- end -}}

{{/* The MigrationRun spec: generated from the values, then migration.spec merged over it. */}}
{{- define "alembic-operator-hook.spec" -}}
{{- $m := default dict .Values.migration -}}
{{- $db := default dict $m.database -}}
{{- $appdb := default dict .Values.database -}}
{{- $secret := default $appdb.secretName $db.secretName -}}
{{- if not $secret -}}
{{- fail "alembic-operator-hook: set migration.database.secretName (or database.secretName): the Secret with the database URL" -}}
{{- end -}}
{{- $key := default (default "DATABASE_URL" $appdb.key) $db.key -}}
{{- if not $m.backup -}}
{{- fail "alembic-operator-hook: set migration.backup (at least backup.s3.bucket): no migration runs without a backup" -}}
{{- end -}}
{{- $migrate := dict "image" (include "alembic-operator-hook.image" .) "target" (default "head" $m.target) -}}
{{- with $m.workingDir }}{{- $_ := set $migrate "workingDir" . -}}{{- end -}}
{{- $spec := dict "database" (dict "urlSecretRef" (dict "name" $secret "key" $key)) "migrate" $migrate "backup" (deepCopy $m.backup) -}}
{{- $spec = mustMergeOverwrite $spec (deepCopy (default dict $m.spec)) -}}
{{- toYaml $spec -}}
{{- end -}}

{{/* Name of the MigrationRun: runName, else <release>-<revision>, else (nameBy: spec) <release>-<spec hash>. */}}
{{- define "alembic-operator-hook.runName" -}}
{{- $m := default dict .Values.migration -}}
{{- $by := default "revision" $m.nameBy -}}
{{- if $m.runName -}}
{{- $m.runName -}}
{{- else if eq $by "revision" -}}
{{- $suffix := toString .Release.Revision -}}
{{- printf "%s-%s" (.Release.Name | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- else if eq $by "spec" -}}
{{- $suffix := include "alembic-operator-hook.spec" . | sha256sum | trunc 10 -}}
{{- printf "%s-%s" (.Release.Name | trunc 52 | trimSuffix "-") $suffix -}}
{{- else -}}
{{- fail (printf "alembic-operator-hook: migration.nameBy must be revision or spec, not %q" $by) -}}
{{- end -}}
{{- end -}}

{{- define "alembic-operator-hook.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: migration
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Hook annotations for Helm and Argo CD; the argument is (list $root $weight). */}}
{{- define "alembic-operator-hook.annotations" -}}
{{- $weight := index . 1 -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ $weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation
argocd.argoproj.io/hook: PreSync
argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
argocd.argoproj.io/sync-wave: {{ $weight | quote }}
{{- end -}}

{{- define "alembic-operator-hook.migration" -}}
{{- $m := default dict .Values.migration -}}
{{- if (ne (toString $m.enabled) "false") }}
{{- $name := include "alembic-operator-hook.fullname" . }}
{{- $run := include "alembic-operator-hook.runName" . }}
{{- $runner := default dict $m.runner }}
{{- $timeout := int (default 3600 $runner.timeoutSeconds) }}
---
# The hook Job's identity: it may create and follow MigrationRuns, nothing else.
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "alembic-operator-hook.labels" . | nindent 4 }}
  annotations:
    {{- include "alembic-operator-hook.annotations" (list . -10) | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "alembic-operator-hook.labels" . | nindent 4 }}
  annotations:
    {{- include "alembic-operator-hook.annotations" (list . -10) | nindent 4 }}
rules:
  # alembic_operator.controller.rbac.HOOK_RULES
  - apiGroups: ["alembic-operator.dev"]
    resources: ["migrationruns"]
    verbs: ["create", "get", "list", "watch"]
  # The operator's admission policy: who creates a MigrationRun must be allowed to create Jobs.
  - apiGroups: ["batch"]
    resources: ["jobs"]
    verbs: ["create"]
  {{- $fence := dig "writeFence" "scaleDown" list (include "alembic-operator-hook.spec" . | fromYaml) }}
  {{- range $target := $fence }}
  # ... and to scale each writeFence target.
  - apiGroups: ["apps"]
    resources: [{{ printf "%ss/scale" (lower $target.kind) | quote }}]
    resourceNames: [{{ $target.name | quote }}]
    verbs: ["get", "update", "patch"]
  {{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "alembic-operator-hook.labels" . | nindent 4 }}
  annotations:
    {{- include "alembic-operator-hook.annotations" (list . -9) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .Release.Namespace }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "alembic-operator-hook.labels" . | nindent 4 }}
  annotations:
    {{- include "alembic-operator-hook.annotations" (list . -8) | nindent 4 }}
data:
  migrationrun.yaml: |
    apiVersion: alembic-operator.dev/v1alpha1
    kind: MigrationRun
    metadata:
      name: {{ $run }}
      namespace: {{ .Release.Namespace }}
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
        app.kubernetes.io/managed-by: {{ .Release.Service }}
        app.kubernetes.io/component: migration
      annotations:
        alembic-operator.dev/helm-release: {{ printf "%s/%s" .Release.Namespace .Release.Name | quote }}
        alembic-operator.dev/helm-revision: {{ .Release.Revision | quote }}
    spec:
      {{- include "alembic-operator-hook.spec" . | nindent 6 }}
---
# Helm waits for this Job (not for the MigrationRun): it fails, and so does the
# release, unless the run Succeeded. Kept after a failure for inspection.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "alembic-operator-hook.labels" . | nindent 4 }}
    alembic-operator.dev/run: {{ $run }}
  annotations:
    {{- include "alembic-operator-hook.annotations" (list . 0) | nindent 4 }}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: {{ add $timeout 120 }}
  template:
    metadata:
      labels:
        {{- include "alembic-operator-hook.labels" . | nindent 8 }}
        alembic-operator.dev/run: {{ $run }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml (default (dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault")) $runner.podSecurityContext) | nindent 8 }}
      containers:
        - name: run
          image: {{ default (include "alembic-operator-hook.image" .) $runner.image | quote }}
          {{- with $runner.imagePullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          # The manifest comes from the ConfigMap through the environment (works on
          # every runtime, no volume needed) and reaches `run` on stdin.
          command: ["/bin/sh", "-c"]
          args:
            - >-
              printf '%s\n' "$MIGRATIONRUN_MANIFEST" |
              alembic-operator run --manifest /dev/stdin
              --name "$MIGRATIONRUN_NAME" --namespace "$MIGRATIONRUN_NAMESPACE"
              --timeout-seconds {{ $timeout }}
          env:
            - name: MIGRATIONRUN_MANIFEST
              valueFrom:
                configMapKeyRef:
                  name: {{ $name }}
                  key: migrationrun.yaml
            - name: MIGRATIONRUN_NAME
              value: {{ $run | quote }}
            - name: MIGRATIONRUN_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
          securityContext:
            {{- toYaml (default (dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "capabilities" (dict "drop" (list "ALL"))) $runner.securityContext) | nindent 12 }}
          {{- with $runner.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
{{- end }}
{{- end -}}
