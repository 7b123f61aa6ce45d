-- Argo CD resource action discovery for alembic-operator.dev/MigrationRun:
-- "approve-restore" is offered on every run and enabled only while the run is
-- RollbackHeld (a restore waits for a person) and not approved yet.
local actions = {}
local held = obj.status ~= nil and obj.status.phase == "RollbackHeld"
local annotations = obj.metadata.annotations or {}
local approved = annotations["alembic-operator.dev/approve-restore"] ~= nil
actions["approve-restore"] = {["disabled"] = not held or approved}
return actions
