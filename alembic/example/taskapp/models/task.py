"""A task: the big table of the example (JSONB details, a data-migrated priority, a composite index)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class Task(SQLModel, table=True):
    __table_args__ = (Index("ix_task_status_priority", "status", "priority"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=500)
    description: str | None = Field(default=None)
    status: str = Field(default="pending", max_length=50)
    # Added by revision 0002 with a data migration (backfill, then NOT NULL).
    priority: str = Field(default="medium", max_length=20, sa_column_kwargs={"server_default": "medium"})
    # Added by revision 0003.
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    project_id: int = Field(foreign_key="project.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="worker.id", index=True)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
