"""Revisions the plan could not render offline: nobody checked them, so a person decides (issue 15).

Under ``plan.destructive: block`` (and ``approve``) a run whose plan names
unrendered revisions waits in AwaitingApproval, each revision named by id and
reason in status.approval and the Warning Event, instead of failing forever;
approve-migration lets it go on, reject-migration ends it Failed with nothing
touched. Under ``warn`` it goes on, a Warning Event naming the revisions.
"""

from alembic_operator.api import constants
from alembic_operator.api.conditions import ConditionType, EventReason, Reason
from alembic_operator.api.model import Phase

from .world import World, condition, make_spec

APPROVE = constants.ANNOTATION_APPROVE_MIGRATION
REJECT = constants.ANNOTATION_REJECT_MIGRATION
UNRENDERED_PLAN = {
    "fromRevision": "a1",
    "statements": 5,
    "destructive": [],
    "rendered": False,
    "unrendered": [
        {"revision": "0002", "reason": "OperationalError: no connection in offline mode"},
        {"revision": "0004", "reason": "RuntimeError: 0004 runs online only"},
    ],
}


def planned(policy: str, plan: dict[str, object] = UNRENDERED_PLAN) -> World:
    """A run under ``policy`` whose plan Job reported ``plan``, reconciled once after it."""
    world = World(make_spec(plan={"destructive": policy}))
    world.tick()
    assert world.phase == Phase.PLANNING
    world.finish("plan", data=plan)
    world.tick()
    return world


def started_steps(world: World) -> list[str]:
    return [c.step for d in world.decisions for c in d.creates]


def warnings(world: World, reason: str) -> list[str]:
    return [e.message for d in world.decisions for e in d.events if e.type == "Warning" and e.reason == reason]


def test_block_waits_for_a_person_naming_each_unrendered_revision_and_its_reason():
    world = planned("block")
    assert world.phase == Phase.AWAITING_APPROVAL
    assert started_steps(world) == ["plan"]  # nothing after the plan while waiting
    approval = world.status.approval
    assert approval is not None and approval.state == "Waiting"
    assert approval.reasons == [
        "revision 0002 not rendered offline (OperationalError: no connection in offline mode), so not checked; "
        "plan.destructive is block",
        "revision 0004 not rendered offline (RuntimeError: 0004 runs online only), so not checked; "
        "plan.destructive is block",
    ]
    assert approval.summary == (
        "a1 → head: 5 statement(s); not rendered offline: 0002: OperationalError: no connection in offline mode; "
        "0004: RuntimeError: 0004 runs online only"
    )
    [event] = warnings(world, EventReason.AWAITING_APPROVAL)
    assert "revision 0002 not rendered offline (OperationalError" in event
    assert "revision 0004 not rendered offline (RuntimeError" in event
    assert f"{APPROVE}=<your user name>" in event


def test_the_unrendered_revisions_are_recorded_in_status_plan():
    world = planned("block")
    assert world.status.plan is not None
    assert world.status.plan.unrendered == [
        "0002: OperationalError: no connection in offline mode",
        "0004: RuntimeError: 0004 runs online only",
    ]


def test_an_approved_run_with_unrendered_revisions_backs_up_migrates_and_succeeds():
    world = planned("block")
    world.annotate(**{APPROVE: "alice"})
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert [c.step for c in decision.creates] == ["backup"]
    assert world.status.approval is not None and (world.status.approval.state, world.status.approval.by) == (
        "Approved",
        "alice",
    )
    world.run_to(Phase.SUCCEEDED)


def test_a_rejected_run_with_unrendered_revisions_ends_failed_with_nothing_started_after_the_plan():
    world = planned("block")
    world.annotate(**{REJECT: "bob"})
    world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.message == "the migration was rejected by bob; the database was not touched"
    assert condition(world.status, ConditionType.STALLED).reason == Reason.MIGRATION_REJECTED
    world.tick()
    assert started_steps(world) == ["plan"]


def test_waiting_on_unrendered_revisions_polls_without_repeating_the_event():
    world = planned("block")
    world.advance(45)
    decision = world.tick()
    assert world.phase == Phase.AWAITING_APPROVAL
    assert decision.creates == [] and decision.events == []
    assert len(warnings(world, EventReason.AWAITING_APPROVAL)) == 1


def test_approve_also_waits_on_unrendered_revisions_without_destructive_statements():
    world = planned("approve")
    assert world.phase == Phase.AWAITING_APPROVAL
    approval = world.status.approval
    assert approval is not None
    assert [r.split(" not rendered")[0] for r in approval.reasons] == ["revision 0002", "revision 0004"]
    assert all(r.endswith("plan.destructive is approve") for r in approval.reasons)


def test_warn_goes_on_to_the_backup_with_a_warning_naming_each_unrendered_revision():
    world = planned("warn")
    assert world.phase == Phase.BACKING_UP
    assert world.status.approval is None
    [event] = warnings(world, EventReason.UNRENDERED_REVISIONS)
    assert event == (
        "the plan could not check 2 revision(s) (not rendered offline): "
        "0002: OperationalError: no connection in offline mode; 0004: RuntimeError: 0004 runs online only"
    )
    assert warnings(world, EventReason.AWAITING_APPROVAL) == []


def test_block_with_destructive_statements_still_fails_and_names_the_unrendered_revisions_too():
    plan = {
        **UNRENDERED_PLAN,
        "destructive": [{"revision": "0003", "kind": "drop_table", "statement": "DROP TABLE legacy"}],
    }
    world = planned("block", plan)
    assert world.phase == Phase.FAILED
    assert condition(world.status, ConditionType.STALLED).reason == Reason.DESTRUCTIVE_CHANGE_BLOCKED
    assert "0003 drop_table: DROP TABLE legacy" in (world.status.message or "")
    assert "2 revision(s) not rendered offline: 0002: OperationalError" in (world.status.message or "")
    assert started_steps(world) == ["plan"]


def test_a_plan_without_unrendered_revisions_under_block_goes_straight_to_the_backup():
    world = planned("block", {"fromRevision": "a1", "statements": 3, "destructive": []})
    assert world.phase == Phase.BACKING_UP and world.status.approval is None
    assert world.status.plan is not None and world.status.plan.unrendered == []


def test_the_plan_job_under_block_reports_unrendered_revisions_instead_of_failing():
    world = World(make_spec(plan={"destructive": "block"}))
    decision = world.tick()
    command = decision.creates[0].manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--policy") + 1] == "block"
    assert command[command.index("--unrendered") + 1] == "report"


def test_a_password_in_an_unrendered_revisions_reason_reaches_neither_status_nor_events():
    plan = {
        **UNRENDERED_PLAN,
        "unrendered": [{"revision": "0002", "reason": "OperationalError: postgresql://app:hunter2@db/shop refused"}],
    }
    world = planned("block", plan)
    assert world.phase == Phase.AWAITING_APPROVAL
    everything = world.status.model_dump_json() + "".join(e.message for d in world.decisions for e in d.events)
    assert "hunter2" not in everything
    assert "revision 0002 not rendered offline" in everything
