"""The rehearsal's containers (spec.rehearsal): the ``rehearse`` step's four commands and its server's env.

Pure, like :mod:`.jobs`, which builds the Jobs and calls here for the rehearsal steps' commands:

* rehearse-prepare (operator image): alembic-operator rehearse prepare --database D --location L --jobs N
                                     [--max-database-bytes B]
* rehearse-migrate (app image):      alembic-operator rehearse exec --database D --run <the migrate command>
* rehearse-verify  (operator image): alembic-operator rehearse exec --database D --run <the verify command>
* rehearse-drop    (operator image): alembic-operator rehearse drop --database D --location L

Must not: name a database without :data:`SCRATCH_PREFIX` (the step refuses it; a slip must never
reach the real database's name) or pass a secret's value (the other server's URL is a secretKeyRef).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from alembic_operator.api.model import RunView
from alembic_operator.api.steps import Step
from alembic_operator.controller import naming

CLI = "alembic-operator"
#: The step's own prefix (job/commands/rehearse.py SCRATCH_PREFIX; the controller never imports job/).
SCRATCH_PREFIX = "alembic_rehearsal_"
#: The env var naming the rehearsal's other server (job/commands/rehearse.py SERVER_ENV).
SERVER_ENV = "REHEARSAL_DATABASE_URL"
STEPS = frozenset({Step.REHEARSE_PREPARE, Step.REHEARSE_MIGRATE, Step.REHEARSE_VERIFY, Step.REHEARSE_DROP})


def scratch_database(*, run_uid: str) -> str:
    """``alembic_rehearsal_<hex16>``: deterministic per run, so a lost record still names the same copy."""
    return SCRATCH_PREFIX + hashlib.sha256(run_uid.encode()).hexdigest()[:16]


def database_of(run: RunView) -> str:
    """The scratch database of ``run``: the name recorded in status.rehearsal, else the derived one."""
    recorded = run.status.rehearsal
    return recorded.database if recorded is not None else scratch_database(run_uid=run.uid)


def _location(run: RunView) -> str:
    return naming.location(spec=run.spec, namespace=run.namespace, run_name=run.name, run_uid=run.uid)


def command(*, run: RunView, step: Step, inner: Sequence[str] = ()) -> list[str]:
    """The container command of a rehearsal ``step``; ``inner`` is the command exec runs against the copy."""
    database = database_of(run)
    match step:
        case Step.REHEARSE_PREPARE:
            cmd = [CLI, "rehearse", "prepare", "--database", database, "--location", _location(run)]
            cmd += ["--jobs", str(run.spec.rehearsal.jobs)]
            if run.spec.rehearsal.max_database_bytes is not None:
                cmd += ["--max-database-bytes", str(run.spec.rehearsal.max_database_bytes)]
            return cmd
        case Step.REHEARSE_MIGRATE | Step.REHEARSE_VERIFY:
            return [CLI, "rehearse", "exec", "--database", database, "--run", *inner]
        case Step.REHEARSE_DROP:
            return [CLI, "rehearse", "drop", "--database", database, "--location", _location(run)]
    raise ValueError(f"{step} is not a rehearsal step")


def server_env(*, run: RunView) -> list[dict[str, Any]]:
    """The other server's URL by secretKeyRef (spec.rehearsal.urlSecretRef), or nothing: the same server."""
    ref = run.spec.rehearsal.url_secret_ref
    if ref is None:
        return []
    return [{"name": SERVER_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]
