"""A person approves or rejects a migration before the database is changed (AwaitingApproval).

``plan.destructive: approve`` waits when destructive statements were found,
``approval.required: true`` makes every run wait; the annotations
approve-migration / reject-migration (their values name the user) decide, and
status records who decided and when. A rejected run ends Failed and no step
after the plan ever started.
"""

from alembic_operator.api import constants
from alembic_operator.api.conditions import ConditionType, EventReason, Reason
from alembic_operator.api.model import Phase

from .world import World, condition, make_spec

DESTRUCTIVE_PLAN = {
    "statements": 4,
    "fromRevision": "a1",
    "destructive": [{"revision": "b2", "kind": "DELETE", "statement": "DELETE FROM public.task"}],
}
APPROVE = constants.ANNOTATION_APPROVE_MIGRATION
REJECT = constants.ANNOTATION_REJECT_MIGRATION


def waiting_world(**spec: object) -> World:
    """A run with ``spec`` whose plan found one destructive DELETE, reconciled once after the plan."""
    world = World(make_spec(**spec))
    world.tick()
    assert world.phase == Phase.PLANNING
    world.finish("plan", data=DESTRUCTIVE_PLAN)
    world.tick()
    return world


def started_steps(world: World) -> list[str]:
    return [c.step for d in world.decisions for c in d.creates]


def test_destructive_statements_under_approve_wait_with_the_summary_a_warning_and_progressing_conditions():
    world = waiting_world(plan={"destructive": "approve"})
    decision = world.decisions[-1]
    assert world.phase == Phase.AWAITING_APPROVAL
    assert started_steps(world) == ["plan"]  # no backup, no migration while waiting
    approval = world.status.approval
    assert approval is not None and approval.state == "Waiting"
    assert approval.reasons == ["1 destructive statement(s) and plan.destructive is approve"]
    assert approval.summary == "a1 → head: 4 statement(s); destructive: b2 DELETE: DELETE FROM public.task"
    assert approval.requested_at == world.now
    warnings = [e for e in decision.events if e.reason == EventReason.AWAITING_APPROVAL]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert f"{APPROVE}=<your user name>" in warnings[0].message and REJECT in warnings[0].message
    # kstatus and Argo CD read it as progressing, not stalled: Flux and the Helm hook keep waiting.
    assert condition(world.status, ConditionType.RECONCILING).status == "True"
    assert condition(world.status, ConditionType.STALLED).status == "False"
    assert condition(world.status, ConditionType.READY).status == "False"


def test_waiting_is_idempotent_and_polls_without_new_events():
    world = waiting_world(plan={"destructive": "approve"})
    world.advance(30)
    decision = world.tick()
    assert world.phase == Phase.AWAITING_APPROVAL
    assert decision.creates == [] and decision.events == []
    assert decision.requeue_after is not None


def test_an_approval_names_the_user_and_the_run_backs_up_migrates_and_succeeds():
    world = waiting_world(plan={"destructive": "approve"})
    world.advance(60)
    world.annotate(**{APPROVE: "alice"})
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    approval = world.status.approval
    assert approval is not None and (approval.state, approval.by, approval.decided_at) == (
        "Approved",
        "alice",
        world.now,
    )
    assert [e.message for e in decision.events if e.reason == EventReason.MIGRATION_APPROVED] == [
        "the migration was approved by alice; going on"
    ]
    assert [c.step for c in decision.creates] == ["backup"]
    world.run_to(Phase.SUCCEEDED)
    assert world.status.approval is not None and world.status.approval.by == "alice"


def test_a_rejection_ends_the_run_failed_naming_the_user_and_nothing_after_the_plan_starts():
    world = waiting_world(plan={"destructive": "approve"})
    world.annotate(**{REJECT: "bob"})
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.message == "the migration was rejected by bob; the database was not touched"
    approval = world.status.approval
    assert approval is not None and (approval.state, approval.by) == ("Rejected", "bob")
    assert [e.type for e in decision.events if e.reason == EventReason.MIGRATION_REJECTED] == ["Warning"]
    assert condition(world.status, ConditionType.STALLED).reason == Reason.MIGRATION_REJECTED
    world.tick()
    assert started_steps(world) == ["plan"]


def test_a_rejection_wins_over_an_approval_set_at_the_same_time():
    world = waiting_world(plan={"destructive": "approve"})
    world.annotate(**{APPROVE: "alice", REJECT: "bob"})
    world.tick()
    assert world.phase == Phase.FAILED and world.status.approval is not None
    assert world.status.approval.by == "bob"


def test_false_or_empty_annotations_decide_nothing():
    world = waiting_world(plan={"destructive": "approve"})
    world.annotate(**{APPROVE: "false", REJECT: " "})
    world.tick()
    assert world.phase == Phase.AWAITING_APPROVAL


def test_without_destructive_statements_approve_does_not_wait():
    world = World(make_spec(plan={"destructive": "approve"}))
    world.tick()
    world.finish("plan", data={"statements": 2, "destructive": []})
    world.tick()
    assert world.phase == Phase.BACKING_UP and world.status.approval is None


def test_the_plan_step_itself_is_told_warn_under_approve_and_does_not_fail():
    world = World(make_spec(plan={"destructive": "approve"}))
    decision = world.tick()
    command = decision.creates[0].manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--policy") + 1] == "warn"


def test_warn_with_destructive_statements_still_goes_on_without_waiting():
    world = waiting_world()
    assert world.phase == Phase.BACKING_UP and world.status.approval is None


def test_approval_required_makes_a_run_without_findings_wait_even_when_the_plan_is_skipped():
    world = World(make_spec(approval={"required": True}, plan={"destructive": "allow"}))
    decision = world.tick()
    assert world.phase == Phase.AWAITING_APPROVAL
    assert decision.creates == []
    assert world.status.approval is not None and world.status.approval.reasons == ["approval.required is true"]
    world.annotate(**{APPROVE: "carol"})
    world.tick()
    assert world.phase == Phase.BACKING_UP


def test_an_approval_given_beforehand_is_recorded_and_waits_for_nobody():
    world = World(make_spec(approval={"required": True}), annotations={APPROVE: "alice"})
    world.tick()
    world.finish("plan", data={"statements": 2, "destructive": []})
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert [e.reason for e in decision.events if e.type == "Warning"] == []
    assert world.status.approval is not None and world.status.approval.state == "Approved"


def test_a_held_restore_records_who_approved_it_and_when():
    world = World()
    world.run_to(Phase.VERIFYING)
    world.finish("verify", ok=False, reason="RowCountViolation", message="public.task lost rows", changed=True)
    world.tick()
    world.finish(
        "restore",
        ok=False,
        reason="ForeignWritesDetected",
        data={"foreignWrites": {"tables": [{"table": "public.task", "rows": 3, "inserted": 3}], "rows": 3}},
        message="other sessions wrote ~3 rows since the backup",
    )
    world.tick()
    assert world.phase == Phase.ROLLBACK_HELD and world.status.restore_approval is None
    world.advance(120)
    world.annotate(**{constants.ANNOTATION_APPROVE_RESTORE: "dave"})
    world.tick()
    record = world.status.restore_approval
    assert record is not None and (record.state, record.by, record.decided_at) == ("Approved", "dave", world.now)
