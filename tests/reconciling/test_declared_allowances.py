"""The data changes the revisions declare reach the verify Job, and what verify allowed reaches status (issue 15).

The plan step reads ``alembic_operator_allow`` from the pending revisions
(``declaredAllowances``); the operator keeps them in ``status.plan`` and hands
them, with the spec's own ``allowDecrease``, to the verify Job. Whatever verify
allowed is named in ``status.rowCounts.allowed`` and in the run's final message.
"""

from alembic_operator.api.model import Phase

from .world import BACKUP_DATA, MIGRATE_DATA, World, make_spec

PLAN = {
    "fromRevision": "a1",
    "statements": 6,
    "destructive": [],
    "declaredAllowances": [
        {"revision": "0003", "table": "legacy_order", "kind": "drop"},
        {"revision": "0003", "table": "order", "kind": "shrink"},
        {"revision": "0004", "table": "customer", "kind": "rename", "to": "client"},
    ],
}
VERIFIED = {
    "tablesChecked": 4,
    "violations": [],
    "revision": "b2",
    "allowancesUsed": [
        {
            "table": "public.legacy_order",
            "change": "dropped",
            "before": 400,
            "pattern": "legacy_order",
            "revision": "0003",
        },
        {"table": "audit.log", "change": "shrank", "before": 30, "after": 3, "pattern": "audit.*"},
    ],
}


def verifying(plan: dict[str, object], **spec: object) -> tuple[World, list[str]]:
    """A run whose plan reported ``plan``, driven to Verifying; the verify Job's command."""
    world = World(make_spec(**spec))
    world.tick()
    world.finish("plan", data=plan)
    world.tick()
    assert world.phase == Phase.BACKING_UP
    world.finish("backup", data=BACKUP_DATA)
    world.tick()
    world.finish("migrate", data=MIGRATE_DATA)
    decision = world.tick()
    assert world.phase == Phase.VERIFYING
    [create] = [c for c in decision.creates if c.step == "verify"]
    return world, create.manifest["spec"]["template"]["spec"]["containers"][0]["command"]


def flags(command: list[str], name: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == name]


def test_the_plans_declared_allowances_are_kept_in_status_and_passed_to_verify_with_the_specs():
    world, command = verifying(PLAN, verify={"rowCounts": {"allowDecrease": ["audit.*"]}})
    assert world.status.plan is not None
    assert [(a.revision, a.kind, a.table, a.to) for a in world.status.plan.declared_allowances] == [
        ("0003", "drop", "legacy_order", None),
        ("0003", "shrink", "order", None),
        ("0004", "rename", "customer", "client"),
    ]
    assert flags(command, "--declared-allowance") == [
        "0003:drop:legacy_order",
        "0003:shrink:order",
        "0004:rename:customer=client",
    ]
    assert flags(command, "--allow-decrease") == ["audit.*"]


def test_without_declarations_the_verify_job_gets_none():
    _, command = verifying({"fromRevision": "a1", "statements": 2, "destructive": []})
    assert "--declared-allowance" not in command


def test_what_verify_allowed_is_named_in_status_and_in_the_succeeded_message():
    world, _ = verifying(PLAN)
    world.finish("verify", data=VERIFIED, message="4 tables checked, no rows lost; allowed: ...")
    world.tick()
    assert world.phase == Phase.SUCCEEDED
    assert world.status.row_counts is not None
    assert world.status.row_counts.allowed == [
        "legacy_order dropped (400 rows; declared by revision 0003)",
        "audit.log shrank 30 → 3 rows (allowed by the run's allowDecrease audit.*)",
    ]
    assert "and verified 4 tables (allowed: legacy_order dropped (400 rows; declared by revision 0003); " in (
        world.status.message or ""
    )
