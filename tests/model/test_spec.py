"""The spec model: defaults, aliases, and clear errors for bad specs."""

from __future__ import annotations

import pydantic
import pytest

from alembic_operator.api import model
from alembic_operator.api.steps import Step

MINIMAL = {
    "database": {"urlSecretRef": {"name": "shop-db"}},
    "migrate": {"image": "shop:1"},
    "backup": {"s3": {"bucket": "backups"}},
}


def with_(**over):
    spec = {k: dict(v) for k, v in MINIMAL.items()}
    for key, value in over.items():
        spec[key] = {**spec.get(key, {}), **value}
    return spec


def error_of(raw) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        model.parse_spec(raw)
    return model.explain(info.value)


def test_a_minimal_spec_gets_every_default():
    spec = model.parse_spec(MINIMAL)
    assert spec.database.url_secret_ref.key == "DATABASE_URL"
    assert spec.migrate.command == ["alembic-operator", "migrate"] and spec.migrate.target == "head"
    assert spec.migrate.lock_timeout == "10s"
    assert spec.backup.format == "custom" and spec.backup.verify == "checksum"
    assert spec.backup.s3.region == "us-east-1" and spec.backup.s3.force_path_style is False
    assert spec.backup.retention.keep_last == 10 and spec.backup.retention.max_age_days is None
    assert spec.verify.row_counts.mode == "exact"
    assert spec.plan.destructive == "warn"
    assert spec.rollback.on_failure == "restore" and spec.rollback.on_foreign_writes == "hold"
    assert (
        spec.timeouts.backup_seconds,
        spec.timeouts.migrate_seconds,
        spec.timeouts.verify_seconds,
        spec.timeouts.restore_seconds,
        spec.timeouts.plan_seconds,
        spec.timeouts.pending_seconds,
    ) == (3600, 1800, 900, 3600, 300, 600)
    assert spec.pod_template.service_account_name is None
    assert spec.write_fence is None


def test_camel_case_and_snake_case_are_both_accepted_and_dumped_as_camel_case():
    camel = model.parse_spec(with_(migrate={"image": "x", "lockTimeout": "3s"}))
    snake = model.parse_spec(with_(migrate={"image": "x", "lock_timeout": "3s"}))
    assert camel == snake
    assert model.dump(camel)["migrate"]["lockTimeout"] == "3s"
    assert "urlSecretRef" in model.dump(camel)["database"]


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert model.parse_spec(with_(migrate={"image": "x", "fromTheFuture": 1})).migrate.image == "x"


def test_a_missing_image_is_named_by_its_json_path():
    raw = with_()
    raw["migrate"] = {}
    assert "spec.migrate.image: Field required" in error_of(raw)


def test_a_bad_compression_is_refused():
    assert "spec.backup.compression" in error_of(with_(backup={"compression": "brotli"}))


@pytest.mark.parametrize("value", ["none", "0", "9", "gzip", "gzip:1", "lz4", "lz4:3", "zstd", "zstd:19"])
def test_good_compressions_are_accepted(value):
    assert model.parse_spec(with_(backup={"compression": value})).backup.compression == value


def test_jobs_without_the_directory_format_are_refused_with_a_reason():
    assert "jobs needs format: directory" in error_of(with_(backup={"jobs": 4}))
    assert model.parse_spec(with_(backup={"jobs": 4, "format": "directory"})).backup.jobs == 4


def test_enums_are_enforced():
    assert "spec.plan.destructive" in error_of(with_(plan={"destructive": "maybe"}))
    assert "spec.verify.rowCounts.mode" in error_of(with_(verify={"rowCounts": {"mode": "fuzzy"}}))
    assert "spec.rollback.onFailure" in error_of(with_(rollback={"onFailure": "pray"}))


def test_minimums_are_enforced():
    assert "spec.backup.retention.keepLast" in error_of(with_(backup={"retention": {"keepLast": 0}}))
    assert "spec.timeouts.migrateSeconds" in error_of(with_(timeouts={"migrateSeconds": 0}))


def test_a_bad_lock_timeout_and_a_bad_secret_name_are_refused():
    assert "spec.migrate.lockTimeout" in error_of(with_(migrate={"image": "x", "lockTimeout": "soon"}))
    assert "spec.database.urlSecretRef.name" in error_of(with_(database={"urlSecretRef": {"name": "Bad_Name"}}))


def test_every_phase_has_a_meaning_and_terminal_phases_are_the_four_ends():
    assert set(model.PHASE_MEANINGS) == set(model.Phase)
    assert {p.value for p in model.TERMINAL_PHASES} == {"Succeeded", "Failed", "RolledBack", "RollbackFailed"}


def test_every_field_has_a_description():
    def check(cls):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
            for arg in (*getattr(field.annotation, "__args__", ()), field.annotation):
                if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                    check(arg)

    check(model.MigrationRunSpec)
    check(model.MigrationRunStatus)


def test_an_empty_status_parses():
    status = model.parse_status(None)
    assert status.phase is None and status.conditions == []


def test_every_step_has_a_deadline_and_a_status_record_and_nothing_else_does():
    spec = model.parse_spec(with_(timeouts={"verifySeconds": 7}))
    steps = model.StepsStatus()
    for step in Step:
        assert spec.timeouts.for_step(step) > 0
        steps.put(step, model.StepStatus(job=f"j-{step}"))
        assert steps.get(step).job == f"j-{step}"
    assert spec.timeouts.for_step(Step.VERIFY) == 7
    assert set(model.StepsStatus.model_fields) == {s.value.replace("-", "_") for s in Step}
    with pytest.raises(KeyError):
        steps.put("dance", model.StepStatus())
