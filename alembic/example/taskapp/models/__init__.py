"""The example app's SQLModel models. Import this package and every model is in ``SQLModel.metadata``.

The env.py template also walks this package, so a new module is never forgotten.
"""

from taskapp.models.comment import Comment
from taskapp.models.project import Project
from taskapp.models.task import Task
from taskapp.models.worker import Worker

__all__ = ["Comment", "Project", "Task", "Worker"]
