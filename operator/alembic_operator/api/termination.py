"""Writing a step's result to its termination message, always valid JSON within 4 KiB.

Kubernetes keeps at most 4 KiB of a container's termination message: a result
that does not fit is cut here in a fixed order (the longest list first, then
the largest data fields, then the message) so the verdict always survives.
The envelope and the per-step models are :mod:`alembic_operator.api.results`.

Must not: import anything of ours but :mod:`.results`; do I/O other than :func:`write`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from alembic_operator.api.results import DEFAULT_PATH, MAX_BYTES, PATH_ENV, VERSION, StepData


def build(
    *,
    step: str,
    ok: bool,
    message: str,
    data: StepData | Mapping[str, Any] | None = None,
    reason: str | None = None,
    changed_database: bool = False,
) -> dict[str, Any]:
    """The wire form of a result of the current version (a step's model is dumped as it was set)."""
    if isinstance(data, StepData):
        data = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {
        "v": VERSION,
        "step": step,
        "ok": ok,
        "reason": reason,
        "message": message,
        "changedDatabase": changed_database,
        "data": dict(data or {}),
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _fits(value: Any) -> bool:
    return len(_dumps(value).encode()) <= MAX_BYTES


def _longest_list(value: Any) -> list[Any] | None:
    """The list with the most items anywhere in ``value`` (lists of results are the usual overflow)."""
    found: list[Any] | None = None
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if isinstance(value, list):
        found = value
    for child in children:
        inner = _longest_list(child)
        if inner is not None and (found is None or len(inner) > len(found)):
            found = inner
    return found


def encode(result: Mapping[str, Any]) -> str:
    """Serialise compactly within 4 KiB, always valid JSON, keeping the verdict.

    Too large: halve the longest list in ``data`` while that helps, then drop
    ``data`` fields largest-first, then shorten the message; ``truncated`` says so.
    """
    if _fits(result):
        return _dumps(result)
    trimmed: dict[str, Any] = json.loads(_dumps(dict(result)))  # a deep copy we may cut
    trimmed["truncated"] = True
    data = trimmed["data"] if isinstance(trimmed.get("data"), dict) else {}
    while not _fits(trimmed) and (longest := _longest_list(data)) is not None and len(longest) > 1:
        del longest[len(longest) // 2 :]
    for key in sorted(data, key=lambda k: len(_dumps(data[k])), reverse=True):
        if _fits(trimmed):
            break
        del data[key]
    message = str(trimmed.get("message") or "")
    while not _fits(trimmed) and message:
        message = message[: len(message) // 2]
        trimmed["message"] = message + "…"
    return _dumps(trimmed)


def write(result: Mapping[str, Any], path: str | None = None) -> str | None:
    """Write the result to the termination message file; return the path written, if any.

    Run by hand, /dev/termination-log usually does not exist; that is not an error.
    """
    target = path or os.environ.get(PATH_ENV) or DEFAULT_PATH
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(encode(result))
    except OSError:
        return None
    return target
