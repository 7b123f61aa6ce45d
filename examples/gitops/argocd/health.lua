-- Argo CD health check for alembic-operator.dev/MigrationRun.
-- Healthy: phase Succeeded (migrated and verified).
-- Degraded: Failed, RolledBack, RollbackFailed (terminal), and RollbackHeld
--   (a restore waits for a person), with the run's message.
-- Progressing: every other phase, and a run the operator has not seen yet
--   (no status, or a status for an older generation).
-- Without this check Argo CD would count a MigrationRun (hook or not) as done
-- as soon as it exists, and sync the app before the migration ran.
local hs = {}
local degraded = {Failed = true, RolledBack = true, RollbackFailed = true, RollbackHeld = true}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for alembic-operator to pick up the run"
  return hs
end
local status = obj.status
local phase = status.phase
local message = status.message or ""
if status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for alembic-operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif degraded[phase] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
if message ~= "" then
  hs.message = phase .. ": " .. message
else
  hs.message = phase
end
return hs
