"""The base of every model in the MigrationRun's CRD: camelCase on the wire, unknown fields ignored.

Must not: import anything of ours; describe a field (:mod:`.spec` and :mod:`.status` do).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CrdModel(BaseModel):
    """camelCase in JSON, snake_case in Python, both accepted; unknown fields ignored (the apiserver prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", validate_default=True)


def nested(model: type[BaseModel], description: str, **kwargs: Any) -> Any:
    """A nested object field that defaults to its model's defaults (and to ``{}`` in the CRD)."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}}, **kwargs)
