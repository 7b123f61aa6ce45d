-- Argo CD resource action "approve-restore" for alembic-operator.dev/MigrationRun:
-- approve a held restore (the restore discards the writes listed in the run's
-- status.foreignWrites). Argo CD patches the run as its own ServiceAccount, and
-- the chart's admission policy wants the annotation to name the user making the
-- request: set approver to the ServiceAccount your argocd-server runs as, grant
-- it the verb approve on migrationruns (approve-restore-rbac.yaml), and choose
-- in Argo CD's RBAC who may run the action
-- (p, role:oncall, applications, action/alembic-operator.dev/MigrationRun/approve-restore, */*, allow).
local approver = "system:serviceaccount:argocd:argocd-server"
if obj.status == nil or obj.status.phase ~= "RollbackHeld" then
  error("approve-restore: the run is not RollbackHeld; no restore waits for a decision")
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["alembic-operator.dev/approve-restore"] = approver
return obj
