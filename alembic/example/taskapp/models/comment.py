"""A comment on a task by a worker."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import Field, SQLModel


class Comment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="worker.id")
    body: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
