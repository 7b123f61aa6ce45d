"""bench.taskevents: containerd's task event lines → how long each step container ran."""

from __future__ import annotations

import pytest

from bench import taskevents

START = '2026-11-30 07:00:42.5 +0000 UTC k8s.io /tasks/start {"container_id":"abc","pid":7}\n'
EXIT = (
    "2026-11-30 07:00:44.123456789 +0000 UTC k8s.io /tasks/exit "
    '{"container_id":"abc","id":"abc","pid":7,"exited_at":{"seconds":1}}\n'
)
SANDBOX = '2026-11-30 07:00:42.1 +0000 UTC k8s.io /tasks/start {"container_id":"pause1","pid":6}\n'


def _pod(step: str, container: str) -> dict[str, object]:
    return {
        "metadata": {"labels": {"alembic-operator.dev/step": step}},
        "status": {"containerStatuses": [{"containerID": f"containerd://{container}"}]},
    }


def test_a_start_and_exit_line_give_the_span_of_the_step_named_by_the_pod() -> None:
    spans = taskevents.spans(taskevents.times([SANDBOX, START, EXIT], [_pod("backup", "abc")]))
    assert spans == {"backup": pytest.approx(1.623456789)}


def test_a_container_that_did_not_exit_while_subscribed_is_left_out() -> None:
    assert taskevents.spans(taskevents.times([START], [_pod("backup", "abc")])) == {}


@pytest.mark.parametrize(
    "line",
    [
        "",
        '2026-11-30 07:00:42.5 +0000 UTC k8s.io /containers/create {"id":"abc"}',
        'time="..." level=warning msg="cannot unmarshal"',
    ],
)
def test_lines_other_than_task_start_or_exit_are_ignored(line: str) -> None:
    assert taskevents.parse(line) is None


def test_a_whole_second_without_a_fraction_parses() -> None:
    parsed = taskevents.parse(START.replace("42.5", "42"))
    assert parsed is not None and parsed[0] == "/tasks/start" and parsed[2] % 1 == 0
