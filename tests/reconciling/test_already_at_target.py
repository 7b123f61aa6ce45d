"""A run whose plan finds the database already at the target ends there: no backup, no migration.

A Helm pre-upgrade hook makes a run on every release, and most releases carry no revision; each used
to take a full backup, migrate nothing and verify nothing changed.
"""

from alembic_operator.api.conditions import ConditionType, EventReason, Reason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import CreateJob, EmitEvent, ScaleWorkload

from .world import World, condition, make_spec

AT_TARGET = {"fromRevision": "b2", "toRevision": "b2", "pending": [], "statements": 0, "destructive": []}


def planned(world: World, data: dict[str, object], message: str = "database at b2 is already at the target") -> None:
    world.tick()
    world.finish("plan", data=data, message=message)
    world.tick()


def test_a_database_at_the_target_ends_succeeded_after_the_plan_with_nothing_else_started():
    world = World()
    planned(world, AT_TARGET)
    st = world.status
    assert world.phase == Phase.SUCCEEDED
    assert st.from_revision == st.to_revision == "b2"
    assert st.backup is None and st.steps.backup is None and st.steps.migrate is None
    assert "already at b2" in st.message and "no backup was taken" in st.message
    assert st.finished_at is not None
    created = [a.step for d in world.decisions for a in d.actions if isinstance(a, CreateJob)]
    assert created == ["plan"]
    ready = condition(st, ConditionType.READY)
    assert ready.status == "True" and ready.reason == Reason.ALREADY_AT_TARGET
    assert condition(st, ConditionType.PLANNED).status == "True"
    events = [a for d in world.decisions for a in d.actions if isinstance(a, EmitEvent)]
    assert [e.reason for e in events].count(EventReason.RUN_SUCCEEDED) == 1
    assert world.tick().actions == []  # ended for good: a later reconcile changes nothing


def test_pending_revisions_go_on_to_the_backup():
    world = World()
    planned(world, AT_TARGET | {"toRevision": "c3", "pending": ["c3"], "statements": 2}, "plan from b2 to c3")
    assert world.phase == Phase.BACKING_UP
    assert [a.step for a in world.decisions[-1].actions if isinstance(a, CreateJob)] == ["backup"]


def test_a_result_that_does_not_name_the_revisions_is_not_taken_for_at_target():
    """A plan image older than this rule, or a result without revisions, takes the full path."""
    world = World()
    planned(world, {"statements": 0, "destructive": [], "pending": []}, "plan")
    assert world.phase == Phase.BACKING_UP


def test_with_a_drift_check_asked_for_the_run_takes_the_full_path():
    world = World(make_spec(verify={"drift": "warn"}))
    planned(world, AT_TARGET)
    assert world.phase == Phase.BACKING_UP


def test_a_run_that_would_wait_for_approval_does_not_when_there_is_nothing_to_approve():
    world = World(make_spec(approval={"required": True}))
    planned(world, AT_TARGET)
    assert world.phase == Phase.SUCCEEDED
    assert world.status.approval is None


def test_the_write_fence_is_never_raised_for_a_run_at_the_target():
    world = World(make_spec(writeFence={"scaleDown": [{"kind": "Deployment", "name": "web"}]}))
    world.add_workload("Deployment/web", 3)
    planned(world, AT_TARGET)
    assert world.phase == Phase.SUCCEEDED
    assert not [a for d in world.decisions for a in d.actions if isinstance(a, ScaleWorkload)]
    assert world.workloads["Deployment/web"].replicas == 3
