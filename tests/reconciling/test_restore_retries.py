"""A restore that failed without changing anything (PostgreSQL restarted, S3 away) is tried again after a
pause; a checksum mismatch or exhausted attempts end RollbackFailed at once. Found by tests/faults.

Whether to retry is the restore result's ``retryable`` field, never its message text."""

from alembic_operator.api.model import Phase

from .world import World

RETRYABLE = {"retryable": True}


def _rolling_back() -> World:
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK
    return world


def test_a_restore_rolled_back_by_a_lost_connection_is_retried_after_a_pause():
    world = _rolling_back()
    first = world.job("restore")
    world.finish(
        "restore",
        ok=False,
        reason="RestoreFailed",
        data=RETRYABLE,
        message="restore rolled back, the database is unchanged: FATAL: terminating connection",
    )
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert decision.creates == [] and decision.requeue_after == 5
    assert "retrying in 5s" in world.status.message
    world.advance(2)
    assert world.tick().creates == []
    world.advance(4)
    decision = world.tick()
    assert [c.step for c in decision.creates] == ["restore"]
    assert world.job("restore") != first and world.status.steps.restore.attempt == 2
    world.finish("restore", data={"uri": "s3://b/x/dump.pgdump"})
    world.tick()
    assert world.phase == Phase.ROLLED_BACK


def test_an_unreachable_store_is_retried_until_the_attempts_run_out_then_rollback_fails():
    world = _rolling_back()
    for attempt in (1, 2):
        world.finish("restore", ok=False, reason="StorageError", message="cannot reach S3 endpoint", data=RETRYABLE)
        world.tick()
        assert world.phase == Phase.ROLLING_BACK
        world.advance(5 * attempt + 1)
        world.tick()
        assert world.status.steps.restore.attempt == attempt + 1
    world.finish("restore", ok=False, reason="StorageError", message="cannot reach S3 endpoint", data=RETRYABLE)
    world.tick()
    assert world.phase == Phase.ROLLBACK_FAILED
    assert "after 3 attempts" in world.status.message and "needs a person" in world.status.message


def test_a_checksum_mismatch_is_never_retried():
    world = _rolling_back()
    world.finish("restore", ok=False, reason="ChecksumMismatch", message="sha256 differs")
    world.tick()
    assert world.phase == Phase.ROLLBACK_FAILED


def test_a_restore_that_failed_after_changing_the_database_is_not_retried():
    world = _rolling_back()
    world.finish(
        "restore",
        ok=False,
        reason="RestoreFailed",
        changed=True,
        data=RETRYABLE,
        message="restored row counts differ from the backup: task 3 != 4",
    )
    world.tick()
    assert world.phase == Phase.ROLLBACK_FAILED


def test_a_restore_is_retried_only_when_its_result_says_so_whatever_its_message():
    world = _rolling_back()
    world.finish(
        "restore",
        ok=False,
        reason="StorageError",
        message="restore rolled back, the database is unchanged: cannot reach S3 endpoint",
    )
    world.tick()
    assert world.phase == Phase.ROLLBACK_FAILED
    assert world.status.steps.restore.retry is False


def test_a_waiting_retry_survives_an_operator_restart_through_the_status():
    world = _rolling_back()
    world.finish("restore", ok=False, reason="StorageError", message="cannot reach S3 endpoint", data=RETRYABLE)
    world.tick()
    assert world.status.steps.restore.retry is True
    world.jobs.clear()  # the new operator reads only the stored status: the failed Job was garbage-collected
    world.advance(6)
    assert [c.step for c in world.tick().creates] == ["restore"]
