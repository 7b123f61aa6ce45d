"""The one compact JSON result a step leaves in its termination message.

Kubernetes keeps at most 4 KiB of a container's termination message, so the
result holds a summary and the verdict; anything larger (per-table counts)
lives in the run's S3 folder and the result names it. The operator reads
this back from the Pod status (never from logs) with :func:`parse`.

Shape (version 1)::

    {"v": 1, "step": "backup", "ok": true, "reason": null,
     "message": "one sentence", "changedDatabase": false, "data": {...}}
"""

from __future__ import annotations

import json
import os
from typing import Any

VERSION = 1
#: Kubernetes truncates termination messages beyond 4096 bytes.
MAX_BYTES = 4096
DEFAULT_PATH = "/dev/termination-log"
#: The process kubelet of the test bed cannot mount /dev/termination-log, so it
#: names a per-pod file in this variable; a real kubelet leaves it unset.
PATH_ENV = "TERMINATION_MESSAGE_PATH"


def build(*, step: str, ok: bool, message: str, data: dict[str, Any] | None = None,
          reason: str | None = None, changed_database: bool = False) -> dict[str, Any]:
    """Assemble a result dict of the current version."""
    return {"v": VERSION, "step": step, "ok": ok, "reason": reason, "message": message,
            "changedDatabase": changed_database, "data": data or {}}


def encode(result: dict[str, Any]) -> str:
    """Serialise compactly; if over 4 KiB, drop ``data`` fields largest-first, keeping the verdict."""
    text = json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)
    if len(text.encode()) <= MAX_BYTES:
        return text
    trimmed = dict(result, data=dict(result.get("data") or {}), truncated=True)
    data = trimmed["data"]
    for key in sorted(data, key=lambda k: len(json.dumps(data[k], default=str)), reverse=True):
        del data[key]
        text = json.dumps(trimmed, separators=(",", ":"), sort_keys=True, default=str)
        if len(text.encode()) <= MAX_BYTES:
            return text
    trimmed["message"] = trimmed["message"][:1000]
    return json.dumps(trimmed, separators=(",", ":"), sort_keys=True, default=str)


def write(result: dict[str, Any], path: str | None = None) -> str | None:
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


def parse(message: str | None) -> dict[str, Any] | None:
    """Parse a termination message; ``None`` when it is absent or not one of ours."""
    if not message:
        return None
    try:
        value = json.loads(message.strip())
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("v") != VERSION or "step" not in value:
        return None
    return value
