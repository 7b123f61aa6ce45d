"""The downgrade Job's container (``rollback.method: downgrade``): the app's image, migrate's flags.

Pure, like :mod:`.jobs` (which builds the Job around it). The downgrade runs
``alembic-operator downgrade`` in the application's image and working
directory, so it finds the same alembic.ini, env.py and scripts as the
migration; it gets the migration's ``--lock-timeout`` and, when the migrate
command is the default one, its ``spec.migrate.args`` too (``--config``,
``--url-env``, ``--flask-app``: the app's environment). A custom migrate command's
arguments mean something to that command only, so they are not passed.

Must not: call the API; pass anything the step does not parse.
"""

from __future__ import annotations

from alembic_operator.api.model import DEFAULT_MIGRATE_COMMAND, RunView


def downgrade_command(*, run: RunView) -> tuple[list[str], list[str]]:
    """The downgrade container's (command, args)."""
    m = run.spec.migrate
    args = ["--lock-timeout", m.lock_timeout]
    if list(m.command) == DEFAULT_MIGRATE_COMMAND:
        args += list(m.args)
    return [DEFAULT_MIGRATE_COMMAND[0], "downgrade"], args  # our CLI, which the app's image carries for plan
