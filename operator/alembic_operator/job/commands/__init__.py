"""The steps run in Job pods (and by hand): plain functions, no kopf, no argparse beyond add_arguments.

Each module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args) -> dict``;
see :mod:`alembic_operator.cli`. A step raises :class:`alembic_operator.api.errors.StepError`
subclasses for expected failures.
"""
