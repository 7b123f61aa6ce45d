"""A worker (a person or an agent) is assigned tasks and writes comments."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Worker(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    handle: str = Field(max_length=100, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="human", max_length=20)
