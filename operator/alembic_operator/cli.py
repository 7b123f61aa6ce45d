"""The one command line: ``alembic-operator <operator|step>``.

Thin by design (like ``alembic.command``): each subcommand lives in a module
of :mod:`alembic_operator.job.commands` that exposes::

    HELP: str                                   # first line is the --help text
    def add_arguments(parser) -> None           # its flags
    def run(args) -> dict                       # does the work, returns result data

``main`` turns a :class:`~alembic_operator.api.errors.StepError` into a one-line
message on stderr, the step's result in the termination message, and the
error's exit code. No traceback reaches the user for an expected failure,
and every message passes through :func:`~alembic_operator.api.redact.redact`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Sequence

from alembic_operator.api import errors, redact, results

#: Subcommand → module under alembic_operator.job.commands (``operator`` is the controller).
COMMANDS: dict[str, str] = {
    "operator": "alembic_operator.controller.main",
    "backup": "alembic_operator.job.commands.backup",
    "migrate": "alembic_operator.job.commands.migrate",
    "verify": "alembic_operator.job.commands.verify",
    "restore": "alembic_operator.job.commands.restore",
    "plan": "alembic_operator.job.commands.plan",
    "wait": "alembic_operator.job.commands.wait",
    "run": "alembic_operator.client.run",
}


def _load(name: str) -> Any:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; with ``only``, import just that step (fast start-up in Job pods)."""
    parser = argparse.ArgumentParser(prog="alembic-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument("--termination-message-path", default=None,
                        help=f"where to write the JSON result (default ${results.PATH_ENV} or {results.DEFAULT_PATH})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help="(see alembic-operator %s --help)" % name)
            continue
        module = _load(name)
        help_text = module.HELP.strip().splitlines()[0]
        step_parser = sub.add_parser(name, help=help_text, description=module.HELP)
        module.add_arguments(step_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in COMMANDS), None)
    try:
        parser = build_parser(only)
    except ModuleNotFoundError as exc:  # a step not shipped in this build
        print(f"alembic-operator: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = _load(args.command)
    try:
        data = module.run(args)
    except errors.StepError as exc:
        message = redact.redact(exc.message)
        result = results.build(step=args.command, ok=False, message=message, reason=exc.reason,
                               changed_database=exc.changed_database,
                               data={k: v for k, v in exc.details.items()})
        results.write(result, args.termination_message_path)
        print(f"alembic-operator {args.command}: {exc.reason}: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no secrets
        message = redact.redact(f"{type(exc).__name__}: {exc}")
        logging.getLogger("alembic_operator").debug("unexpected error", exc_info=True)
        result = results.build(step=args.command, ok=False, message=message, reason="InternalError",
                               changed_database=True)
        results.write(result, args.termination_message_path)
        print(f"alembic-operator {args.command}: InternalError: {message}", file=sys.stderr)
        return 1
    if args.command != "operator":
        data = data or {}
        message = data.pop("message", f"{args.command} succeeded")
        result = results.build(step=args.command, ok=True, message=redact.redact(str(message)), data=data)
        results.write(result, args.termination_message_path)
        try:
            print(results.encode(result), flush=True)
        except BrokenPipeError:  # `alembic-operator plan | head`: the reader left; not our failure
            sys.stdout = None  # type: ignore[assignment]
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
