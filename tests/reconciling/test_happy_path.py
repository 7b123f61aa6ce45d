"""The normal flow: plan → backup → migrate → verify → Succeeded, and what status records."""

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.reconciler import CreateJob, EmitEvent

from .world import BACKUP_DATA, VERIFY_DATA, World, condition, make_spec


def test_a_new_run_starts_with_the_plan_step_and_records_its_job():
    world = World()
    decision = world.tick()
    assert world.phase == Phase.PLANNING
    [create] = decision.creates
    assert create.step == "plan"
    assert world.status.steps.plan.job == create.name
    assert world.status.steps.plan.attempt == 1
    assert world.status.started_at is not None
    assert world.status.target_revision == "head"
    assert world.status.location.startswith("s3://backups/pg/shop/")


def test_with_destructive_allow_the_plan_is_skipped_and_the_backup_starts_first():
    world = World(make_spec(plan={"destructive": "allow"}))
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert [c.step for c in decision.creates] == ["backup"]
    assert world.status.steps.plan is None


def test_the_happy_path_ends_succeeded_with_revisions_backup_and_row_counts():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    st = world.status
    assert st.from_revision == "a1" and st.to_revision == "b2"
    assert st.backup.uri == BACKUP_DATA["uri"] and st.backup.sha256 == BACKUP_DATA["sha256"]
    assert st.backup.size == "12.3 MiB"
    assert st.row_counts.tables == VERIFY_DATA["tablesChecked"] and st.row_counts.violations == []
    assert st.finished_at is not None
    assert "a1 → b2" in st.message and "verified 4 tables" in st.message
    for step in ("plan", "backup", "migrate", "verify"):
        assert st.steps.get(step).outcome == "Succeeded"
    assert st.steps.restore is None


def test_each_step_emits_started_and_succeeded_events_once():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    reasons = [a.reason for d in world.decisions for a in d.actions if isinstance(a, EmitEvent)]
    for step in (Step.PLAN, Step.BACKUP, Step.MIGRATE, Step.VERIFY):
        assert reasons.count(STEPS[step].started) == 1
        assert reasons.count(STEPS[step].succeeded) == 1
    assert reasons.count(EventReason.RUN_SUCCEEDED) == 1


def test_each_step_job_is_created_exactly_once_on_the_happy_path():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    steps = [a.step for d in world.decisions for a in d.actions if isinstance(a, CreateJob)]
    assert steps == ["plan", "backup", "migrate", "verify"]


def test_the_verify_job_expects_the_revision_the_migration_reported():
    world = World()
    world.run_to(Phase.VERIFYING)
    create = world.decisions[-1].creates[0]
    command = create.manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--expect-revision") + 1] == "b2"


def test_the_created_manifest_is_the_builders_output():
    world = World()
    decision = world.tick()
    expected = job_builders.build_step_job(run=world.run, step=Step.PLAN, settings=world.settings)
    assert decision.creates[0].manifest == expected


def test_the_next_step_starts_in_the_same_reconcile_as_the_previous_one_ends():
    world = World()
    world.tick()
    world.finish("plan", data={"statements": 2, "destructive": []})
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert [c.step for c in decision.creates] == ["backup"]


def test_a_warned_destructive_plan_is_recorded_with_a_warning_event_and_the_run_goes_on():
    world = World()
    world.tick()
    found = [{"revision": "b2", "kind": "DROP COLUMN", "statement": "ALTER TABLE t DROP COLUMN c"}]
    world.finish("plan", data={"statements": 5, "destructive": found})
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert world.status.plan.statements == 5
    assert world.status.plan.destructive == ["b2 DROP COLUMN: ALTER TABLE t DROP COLUMN c"]
    warnings = [e for e in decision.events if e.reason == EventReason.DESTRUCTIVE_CHANGES]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert condition(world.status, "Planned").reason == "DestructiveChangesWarned"


def test_a_blocked_destructive_plan_ends_failed_naming_the_statements_before_any_backup():
    world = World(make_spec(plan={"destructive": "block"}))
    world.tick()
    found = [{"revision": "b2", "kind": "DROP TABLE", "statement": "DROP TABLE orders"}]
    world.finish(
        "plan", ok=False, reason="DestructiveChange", message="1 destructive statement", data={"destructive": found}
    )
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "blocked by destructive statements" in world.status.message
    assert "DROP TABLE orders" in world.status.message
    assert decision.creates == []
    assert world.status.steps.backup is None
    stalled = condition(world.status, "Stalled")
    assert stalled.status == "True" and stalled.reason == "DestructiveChangeBlocked"
