"""core/v1 Events about a MigrationRun, for handlers that post Events themselves.

Pure: returns the dict. (Kopf's ``kopf.event`` works as well; this builder
exists so the message and reason conventions live in one place.)
Reasons are the documented constants of :class:`alembic_operator.api.conditions.EventReason`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from alembic_operator.api import constants
from alembic_operator.api.model import RunView

COMPONENT = "alembic-operator"


def build_event(*, run: RunView, type: Literal["Normal", "Warning"], reason: str, message: str,
                now: datetime) -> dict[str, Any]:
    """A core/v1 Event naming the run as involvedObject; the name is unique per (run, reason, time)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(f"{run.uid}/{reason}/{stamp}/{message}".encode()).hexdigest()[:10]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{run.name[:200]}.{digest}", "namespace": run.namespace},
        "involvedObject": {"apiVersion": constants.API_VERSION, "kind": constants.KIND, "name": run.name,
                           "namespace": run.namespace, "uid": run.uid},
        "type": type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
