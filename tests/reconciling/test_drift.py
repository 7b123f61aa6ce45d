"""spec.verify.drift: after a passed verification the drift step compares the app's models with the
database; warn records the differences and succeeds with a Warning, fail rolls back like a failed verify."""

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase

from .world import VERIFY_DATA, World, make_spec

FOUND = {"policy": "warn", "differences": ["remove_column task.added_by_hand"]}


def verified(policy: str) -> World:
    world = World(make_spec(verify={"drift": policy}))
    world.run_to(Phase.VERIFYING)
    world.finish("verify", data=VERIFY_DATA)
    world.tick()
    return world


def test_by_default_no_drift_job_runs_and_verify_ends_the_run():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    assert world.status.steps.drift is None and world.status.drift is None


def test_warn_runs_the_drift_job_in_the_apps_image_then_succeeds_with_the_differences_and_a_warning():
    world = verified("warn")
    assert world.phase == Phase.VERIFYING
    create = world.decisions[-1].creates[0]
    container = create.manifest["spec"]["template"]["spec"]["containers"][0]
    assert create.step == "drift" and container["image"] == world.run.spec.migrate.image
    assert container["command"][-3:] == ["drift", "--policy", "warn"]
    world.tick()  # following it does not start it again
    assert [c.step for c in world.decisions[-1].creates] == []

    world.finish("drift", data=FOUND, message="1 difference(s) between the models and the database: x")
    decision = world.tick()
    assert world.phase == Phase.SUCCEEDED
    assert world.status.drift is not None and world.status.drift.differences == FOUND["differences"]
    assert [e.type for e in decision.events if e.reason == EventReason.SCHEMA_DRIFT] == ["Warning"]


def test_warn_without_differences_succeeds_without_a_warning():
    world = verified("warn")
    world.finish("drift", data={"policy": "warn", "differences": []}, message="the models match the database")
    decision = world.tick()
    assert world.phase == Phase.SUCCEEDED and world.status.drift is not None
    assert [e for e in decision.events if e.reason == EventReason.SCHEMA_DRIFT] == []


def test_fail_rolls_back_naming_the_drift():
    world = verified("fail")
    world.finish("drift", ok=False, reason="SchemaDrift", message="1 difference(s): remove_column task.x", changed=True)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert world.status.message is not None and world.status.message.startswith("schema drift check failed: ")
    assert [c.step for c in world.decisions[-1].creates] == ["restore"]
