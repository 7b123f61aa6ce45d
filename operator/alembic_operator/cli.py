"""The one command line: ``alembic-operator <operator|step|client>``.

Thin by design (like ``alembic.command``): each subcommand lives in its own
module (:data:`COMMANDS`) that exposes::

    HELP: str                                   # first line is the --help text
    def add_arguments(parser) -> None           # its flags
    def run(args) -> results.StepData           # does the work, returns its typed result

Start-up is paid by every step pod, so only the chosen subcommand's module is
imported: the one-line helps of the others come from :data:`SUBCOMMANDS`
(a unit test keeps them equal to each module's ``HELP``).

``main`` turns a :class:`~alembic_operator.api.errors.StepError` into a one-line
message on stderr, the step's result in the termination message, and the
error's exit code. No traceback reaches the user for an expected failure,
and every message passes through :func:`~alembic_operator.api.redact.redact`.

Must not: import a subcommand's module other than the one being run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from alembic_operator.api import constants, errors, redact, results, termination


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives and its one-line help (the first line of the module's HELP)."""

    module: str
    help: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "operator": Subcommand(
        "alembic_operator.controller.main",
        "Run the MigrationRun controller (Kopf) with metrics and a liveness endpoint.",
    ),
    "backup": Subcommand(
        "alembic_operator.job.commands.backup",
        "Back the database up to S3 with pg_dump, recording size, SHA-256 and row counts.",
    ),
    "migrate": Subcommand(
        "alembic_operator.job.commands.migrate",
        "Apply the pending Alembic revisions to DATABASE_URL under an advisory lock.",
    ),
    "verify": Subcommand(
        "alembic_operator.job.commands.verify",
        "Check that no table lost rows or disappeared since the backup, and optionally the revision.",
    ),
    "restore": Subcommand(
        "alembic_operator.job.commands.restore",
        "Restore the database to exactly the backed-up state, checking the dump's SHA-256 first.",
    ),
    "plan": Subcommand(
        "alembic_operator.job.commands.plan",
        "Render the SQL that migrate would run, with destructive statements marked.",
    ),
    "rehearse": Subcommand(
        "alembic_operator.job.commands.rehearse",
        "Rehearse the migration on a scratch copy of the database: prepare it, run a step against it, drop it.",
    ),
    "downgrade": Subcommand(
        "alembic_operator.job.commands.downgrade",
        "Downgrade the database to the backup's revision, keeping every write made since, and check its schema.",
    ),
    "drift": Subcommand(
        "alembic_operator.job.commands.drift",
        "Compare the application's models with the database, as alembic check does, and report or fail.",
    ),
    "wait": Subcommand(
        "alembic_operator.job.commands.wait",
        "Wait until DATABASE_URL is at the head revision of this image's Alembic scripts.",
    ),
    "run": Subcommand(
        "alembic_operator.client.run",
        "Create a MigrationRun and follow it until it ends (exit 0 only when it Succeeded).",
    ),
}

#: Subcommand → its module (the image tests list the CLI's subcommands with it).
COMMANDS: dict[str, str] = {name: sub.module for name, sub in SUBCOMMANDS.items()}


#: Environment variable choosing the log format when ``--log-format`` is not given (``json`` or ``text``).
LOG_FORMAT_ENV = "ALEMBIC_OPERATOR_LOG_FORMAT"
TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record, with the keys Kopf's JSON format uses (``timestamp``, ``severity``,
    ``message``, ``exc_info``) plus ``logger``; a traceback stays inside its one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "severity": record.levelname.lower(),
            "logger": record.name,
            "message": redact.redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc_info"] = redact.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, log_format: str, level: str) -> None:
    """The root handler on stderr: JSON lines (what log collectors parse) or the plain text format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _load(name: str) -> Any:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand ``only`` gets its flags (its module is imported, no other)."""
    parser = argparse.ArgumentParser(prog="alembic-operator", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get(LOG_FORMAT_ENV) or "text",
        help=f"log lines on stderr as JSON objects or plain text (default ${LOG_FORMAT_ENV}, else text)",
    )
    parser.add_argument(
        "--termination-message-path",
        default=None,
        help=f"where to write the JSON result (default ${results.PATH_ENV} or {results.DEFAULT_PATH})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        if name != only:
            sub.add_parser(name, help=command.help)
            continue
        module = _load(name)
        step_parser = sub.add_parser(name, help=command.help, description=module.HELP)
        module.add_arguments(step_parser)
    return parser


def _failed(
    args: argparse.Namespace, *, message: str, reason: str, changed: bool, details: dict[str, Any] | None = None
) -> None:
    """Write a failed result and say it on stderr in one line."""
    termination.write(
        termination.build(
            step=args.command, ok=False, message=message, reason=reason, changed_database=changed, data=details
        ),
        args.termination_message_path,
    )
    if args.log_format == "json":
        logging.getLogger("alembic_operator").error("alembic-operator %s: %s: %s", args.command, reason, message)
    else:
        print(f"alembic-operator {args.command}: {reason}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in SUBCOMMANDS), None)
    try:
        parser = build_parser(only)
    except ModuleNotFoundError as exc:  # a subcommand whose extra is not installed (e.g. run without kubernetes)
        print(f"alembic-operator: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    configure_logging(log_format=args.log_format, level=args.log_level)
    module = _load(args.command)
    if args.command == "operator" and constants.ENV_TOOLS_WITHOUT_SSL not in os.environ:
        # once, from this (the operator's) image's tools: steps in the app's image have none to ask (issue 14)
        from alembic_operator.job.database import tls

        os.environ[constants.ENV_TOOLS_WITHOUT_SSL] = ",".join(str(m) for m in tls.majors_without_ssl())
    try:
        data = module.run(args)
    except errors.StepError as exc:
        _failed(
            args,
            message=redact.redact(exc.message),
            reason=exc.reason,
            changed=exc.changed_database,
            details=dict(exc.details),
        )
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("alembic_operator").debug("unexpected error", exc_info=True)
        _failed(args, message=redact.redact(f"{type(exc).__name__}: {exc}"), reason="InternalError", changed=True)
        return 1
    if args.command != "operator":
        message = data.message or f"{args.command} succeeded"
        result = termination.build(step=args.command, ok=True, message=redact.redact(message), data=data)
        termination.write(result, args.termination_message_path)
        try:
            print(termination.encode(result), flush=True)
        except BrokenPipeError:  # `alembic-operator plan | head`: the reader left; not our failure
            sys.stdout = None
    return 0


def entry() -> NoReturn:
    """The console script: :func:`main`, then the process ends without the interpreter's finalization.

    Once a step's result is written its work is over, and finalizing the interpreter only tears down
    the daemon threads still alive (the progress server answering the operator's poll, a row count's
    event loop) while they may still run. Under load that crashed a finished backup with SIGSEGV (exit
    139) after its success was written (twice in about 400 runs of the scale benchmark), and the run
    read the recorded backup as a failed step. Logging and the standard streams are flushed first; nothing else
    is pending by then (uploads completed, the termination message written and closed).
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None after a broken pipe, or closed
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
