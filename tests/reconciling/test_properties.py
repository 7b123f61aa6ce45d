"""Properties over random sequences of observations (hypothesis).

Whatever happens to the Jobs and the clock, the reconciler:

* never emits two CreateJob for the same step and attempt,
* never creates a migrate Job twice, nor one before a backup with size and SHA-256 is recorded,
* never moves a run back to an earlier phase,
* emits no CreateJob from a terminal phase,
* is idempotent: reconciling its own output again creates nothing and changes nothing.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alembic_operator.api import constants, model
from alembic_operator.api.model import PHASE_RANK, TERMINAL_PHASES, ForeignWritesStatus, Phase, TableWrites
from alembic_operator.controller.reconciler import JobCondition, JobObservation, Observed, PodObservation, reconcile

from .world import BACKUP_DATA, MIGRATE_DATA, VERIFY_DATA, World, failed, make_spec, pending, succeeded

DATA = {
    "plan": {"statements": 2, "destructive": []},
    "backup": BACKUP_DATA,
    "migrate": MIGRATE_DATA,
    "verify": VERIFY_DATA,
    "restore": {"uri": BACKUP_DATA["uri"]},
}
STEP_OF = {
    Phase.PLANNING: "plan",
    Phase.BACKING_UP: "backup",
    Phase.MIGRATING: "migrate",
    Phase.VERIFYING: "verify",
    Phase.ROLLING_BACK: "restore",
}

events = st.one_of(
    # Success is weighted up so that sequences reach the later phases.
    st.just(("succeed",)),
    st.just(("succeed",)),
    st.just(("succeed",)),
    st.just(("succeed",)),
    st.tuples(st.just("wait"), st.sampled_from([31, 700, 4000])),
    st.tuples(st.just("fail"), st.booleans()),
    st.just(("vanish",)),
    st.just(("evict",)),
    st.just(("deadline",)),
    st.tuples(st.just("pull"), st.sampled_from(["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"])),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=4000)),
    st.just(("approve",)),
    st.just(("foreign",)),
    st.tuples(st.just("blocked"), st.booleans()),
    st.just(("lose-create",)),
    st.just(("no-result",)),
    st.just(("settle",)),
)

specs = st.builds(
    lambda destructive, on_failure, on_foreign: make_spec(
        plan={"destructive": destructive}, rollback={"onFailure": on_failure, "onForeignWrites": on_foreign}
    ),
    st.sampled_from(["allow", "warn", "block"]),
    st.sampled_from(["restore", "none"]),
    st.sampled_from(["hold", "restore"]),
)


def current_job(world: World) -> str | None:
    step = STEP_OF.get(world.phase)
    ss = world.status.steps.get(step) if step else None
    return ss.job if ss else None


def apply_event(world: World, event: tuple) -> dict:
    kind = event[0]
    name = current_job(world)
    step = STEP_OF.get(world.phase)
    tick_kwargs: dict = {}
    if kind == "succeed" and name:
        world.jobs[name] = succeeded(name, step, DATA[step])
    elif kind == "no-result" and name:
        world.jobs[name] = JobObservation(name=name, succeeded=1, pod=PodObservation(phase="Succeeded", exit_code=0))
    elif kind == "fail" and name:
        world.jobs[name] = failed(name, step, changed=event[1])
    elif kind == "vanish" and name:
        world.jobs.pop(name, None)
    elif kind == "evict" and name:
        world.jobs[name] = JobObservation(
            name=name,
            failed=1,
            conditions=(JobCondition("Failed"),),
            pod=PodObservation(phase="Failed", reason="Evicted"),
        )
    elif kind == "deadline" and name:
        world.jobs[name] = JobObservation(
            name=name, failed=1, conditions=(JobCondition("Failed", reason="DeadlineExceeded"),)
        )
    elif kind == "pull" and name:
        world.jobs[name] = pending(name, reason=event[1], message="details")
    elif kind == "wait":
        world.advance(event[1])
    elif kind == "approve":
        world.annotate(**{constants.ANNOTATION_APPROVE_RESTORE: "true"})
    elif kind == "foreign":
        world.run = dataclasses.replace(
            world.run,
            status=world.status.model_copy(
                update={
                    "foreign_writes": ForeignWritesStatus(tables=[TableWrites(table="public.orders", rows=5)], rows=5)
                }
            ),
        )
    elif kind == "blocked":
        tick_kwargs["blocked_by"] = "older-run" if event[1] else None
    elif kind == "settle":
        world.settle()
    elif kind == "lose-create":
        tick_kwargs["create"] = False
    return tick_kwargs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, sequence=st.lists(events, min_size=1, max_size=40))
def test_random_observation_sequences_keep_the_reconciler_safe(spec, sequence):
    world = World(spec)
    created: set[tuple[str, int]] = set()
    migrate_creates = 0
    world.tick()
    for event in sequence:
        rank_before = PHASE_RANK[world.phase]
        was_terminal = world.phase in TERMINAL_PHASES
        backup_recorded = bool(
            world.status.backup and world.status.backup.sha256 and world.status.backup.size_bytes is not None
        )
        kwargs = apply_event(world, event)
        decision = world.tick(**kwargs)

        assert PHASE_RANK[world.phase] >= rank_before, (event, world.phase)
        if was_terminal:
            assert decision.actions == []
        if world.phase in TERMINAL_PHASES:
            assert decision.requeue_after is None
        for create in decision.creates:
            attempt = int(create.manifest["metadata"]["annotations"]["alembic-operator.dev/attempt"])
            key = (create.step, attempt)
            assert key not in created, f"second CreateJob for {key}"
            created.add(key)
            if create.step == "migrate":
                migrate_creates += 1
                assert backup_recorded or (world.status.backup and world.status.backup.sha256)
        assert migrate_creates <= 1

        # kstatus: Ready only on success, Stalled exactly on failure or hold, Reconciling otherwise.
        conds = {c.type: c.status for c in world.status.conditions}
        assert (conds["Ready"] == "True") == (world.phase == Phase.SUCCEEDED)
        stalled = world.phase in TERMINAL_PHASES - {Phase.SUCCEEDED} or world.phase == Phase.ROLLBACK_HELD
        assert (conds["Stalled"] == "True") == stalled
        assert (conds["Reconciling"] == "True") == (world.phase not in TERMINAL_PHASES and not stalled)
        assert world.status.observed_generation == world.run.generation
        if world.phase in TERMINAL_PHASES:
            assert world.status.finished_at is not None and world.status.message

        # Idempotency: the same inputs with the written status create nothing and change nothing.
        again = reconcile(
            run=world.run,
            observed=Observed(jobs=dict(world.jobs)),
            now=world.now,
            settings=world.settings,
            blocked_by=kwargs.get("blocked_by"),
        )
        assert again.creates == [] and again.events == []
        assert again.status == world.status
        assert model.parse_status(model.dump(world.status)) == world.status
