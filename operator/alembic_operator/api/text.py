"""Small pure helpers for text and times that every process shares.

One place for them, so a message is shortened and a Kubernetes timestamp is
read the same way by the controller, the steps and the clients.
Must not: do I/O or import anything of ours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: Longest message the operator copies into status or an Event.
MESSAGE_LIMIT = 400


def one_line(text: str | None, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (runs of whitespace folded), cut to ``limit`` characters with an ellipsis."""
    folded = " ".join((text or "").split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, else its type's name (for one-line errors)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def parse_timestamp(value: Any) -> datetime | None:
    """A Kubernetes/RFC 3339 timestamp (``...Z`` or with an offset) as an aware datetime.

    ``None``, an empty value or text that is not a timestamp gives ``None``;
    a datetime is returned as it is.
    """
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
