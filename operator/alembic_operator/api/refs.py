"""References to other objects of the run's namespace that several spec sections share (a Secret's key).

Its own module so that spec sections outside :mod:`.spec` (the rehearsal's server, say) can name a
Secret the same way ``spec.database`` does without importing :mod:`.spec` (which imports them).

Must not: import anything of ours but :mod:`.schema`; do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"


class SecretKeyRef(_Model):
    """A key in a Secret of the run's namespace; only Job pods read it (safety rule 1)."""

    name: str = Field(
        description="Name of the Secret in the MigrationRun's namespace.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
    )
    key: str = Field(
        default="DATABASE_URL",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key in the Secret holding the database URL (postgresql:// or postgresql+asyncpg://).",
    )


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of an object's controller ownerReference (the one with ``controller: true``), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
