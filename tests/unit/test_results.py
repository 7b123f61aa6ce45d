"""A step's result is read back by the operator: whatever arrives, parse says what it is and never raises."""

from __future__ import annotations

import json

import pytest

from alembic_operator.api import results, termination
from alembic_operator.api.steps import Step, result_of

GOOD = {
    "v": 1,
    "step": "verify",
    "ok": True,
    "reason": None,
    "message": "4 tables checked, no rows lost",
    "changedDatabase": False,
    "data": {"tablesChecked": 4, "rowsBefore": 10, "rowsAfter": 12, "violations": [], "revision": "0004"},
}


def _with(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


def _unreadable(step: str, text: str | bytes | None) -> results.Unreadable:
    parsed = results.parse(step, text)
    assert isinstance(parsed, results.Unreadable), parsed
    assert parsed.ok is False and parsed.reason == results.UNREADABLE_REASON and parsed.changed_database is None
    assert parsed.message.startswith(f"the {step} step left an unreadable result (")
    return parsed


def test_a_good_result_parses_into_the_steps_model() -> None:
    parsed = results.parse(Step.VERIFY, json.dumps(GOOD))
    assert isinstance(parsed, results.StepResult) and isinstance(parsed.data, results.VerifyResult)
    assert parsed.ok and parsed.data.tables_checked == 4 and parsed.data.rows_after == 12
    assert parsed.data.message == parsed.message == "4 tables checked, no rows lost"


def test_no_message_at_all_is_no_result() -> None:
    assert results.parse("backup", None) is None
    assert results.parse("backup", "  \n") is None


def test_a_number_as_message_is_unreadable_and_names_the_field() -> None:
    assert "message: Input should be a valid string" in _unreadable("verify", _with(message=5)).problem


def test_a_list_as_data_is_unreadable() -> None:
    assert _unreadable("verify", _with(data=[])).problem.startswith("data: ")


def test_a_mistyped_data_field_is_unreadable_and_names_it() -> None:
    problem = _unreadable("verify", _with(data={"tablesChecked": "four"})).problem
    assert problem.startswith("data.tablesChecked: ")


@pytest.mark.parametrize("missing", ["ok", "message", "changedDatabase", "data", "reason"])
def test_a_missing_envelope_field_is_unreadable(missing: str) -> None:
    text = json.dumps({k: v for k, v in GOOD.items() if k != missing})
    assert _unreadable("verify", text).problem.startswith(f"{missing}: Field required")


def test_the_result_of_another_step_is_unreadable() -> None:
    assert "it is the result of step 'verify', not 'restore'" in _unreadable("restore", json.dumps(GOOD)).problem


def test_an_unknown_step_or_version_is_unreadable() -> None:
    assert "'vacuum' is not a step" in _unreadable("vacuum", _with(step="vacuum")).problem
    assert "version 2 is not 1" in _unreadable("verify", _with(v=2)).problem
    assert "version True is not 1" in _unreadable("verify", _with(v=True)).problem


def test_text_that_is_not_json_is_unreadable_and_keeps_an_excerpt() -> None:
    parsed = _unreadable("migrate", "Traceback (most recent call last):\n  File ...\nMemoryError")
    assert parsed.problem.startswith("not JSON: ") and parsed.excerpt.startswith("Traceback (most recent call last):")


def test_a_result_cut_at_4_kib_is_unreadable_and_says_it_may_be_truncated() -> None:
    text = _with(message="x" * 5000)[:4096]
    assert _unreadable("verify", text).problem.startswith("not JSON (truncated?)")


def test_invalid_utf8_is_unreadable() -> None:
    assert _unreadable("backup", b'{"v": 1, "message": "\xff\xfe"}').problem.startswith("not UTF-8")


def test_a_json_array_is_unreadable() -> None:
    assert _unreadable("plan", "[1, 2]").problem == "not a JSON object but list"


def test_unknown_fields_are_kept_for_newer_steps() -> None:
    parsed = results.parse("verify", _with(data={**GOOD["data"], "newField": 1}, extra=True))
    assert isinstance(parsed, results.StepResult) and parsed.data.model_extra == {"newField": 1}


def test_a_failed_restore_says_in_a_field_whether_a_new_attempt_may_pass() -> None:
    text = json.dumps(
        termination.build(
            step="restore",
            ok=False,
            reason="RestoreFailed",
            message="rolled back",
            data={"rolledBack": True, "retryable": True},
        )
    )
    parsed = results.parse("restore", text)
    assert isinstance(parsed, results.StepResult) and parsed.data.retryable is True
    assert isinstance(parsed.data, results.RestoreResult)


def test_a_steps_model_is_written_as_the_keys_it_set_in_camel_case() -> None:
    data = results.MigrateResult(from_revision=None, to_revision="0004", applied=["0004"], message="migrated")
    written = termination.build(step="migrate", ok=True, message=data.message, data=data)
    assert written["data"] == {"fromRevision": None, "toRevision": "0004", "applied": ["0004"]}
    parsed = results.parse("migrate", termination.encode(written))
    assert isinstance(parsed, results.StepResult) and parsed.data.to_revision == "0004"


def test_a_large_result_is_cut_to_4_kib_by_shortening_its_lists_and_still_parses() -> None:
    violations = [{"table": f"public.table_{i:04d}", "before": i + 1, "after": i} for i in range(500)]
    written = termination.build(
        step="verify",
        ok=False,
        reason="RowCountViolation",
        message="lost rows " * 100,
        data={"violations": violations, "tablesChecked": 500},
        changed_database=True,
    )
    encoded = termination.encode(written)
    assert len(encoded.encode()) <= results.MAX_BYTES
    parsed = results.parse("verify", encoded)
    assert isinstance(parsed, results.StepResult) and parsed.truncated
    assert parsed.data.tables_checked == 500 and 1 <= len(parsed.data.violations) < 500
    assert parsed.data.violations[0].table == "public.table_0000"


def test_a_huge_message_alone_is_cut_to_4_kib() -> None:
    encoded = termination.encode(termination.build(step="plan", ok=False, message="é" * 5000, reason="RevisionError"))
    assert len(encoded.encode()) <= results.MAX_BYTES
    parsed = results.parse("plan", encoded)
    assert isinstance(parsed, results.StepResult) and parsed.message.startswith("éé") and parsed.truncated


def test_every_step_has_a_result_model() -> None:
    assert {result_of(step) for step in Step} <= set(results.DATA_MODELS)  # a rehearsal's Jobs leave migrate's...


def test_a_5_kib_result_from_another_writer_is_still_read() -> None:
    parsed = results.parse("verify", _with(message="m" * 5120))
    assert isinstance(parsed, results.StepResult) and len(parsed.message) == 5120
