"""``kubectl alembic COMMAND``: the plugin's command line; each command is a guard plus one call.

kubectl runs ``kubectl-alembic`` with the words after ``kubectl alembic`` and the user's
environment (``KUBECONFIG``); global kubectl flags are not passed on, so ``-n``,
``--context`` and ``--kubeconfig`` are the plugin's own.

Must not: import the controller or the steps; act as anyone but the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from alembic_operator.api import constants
from alembic_operator.api.status import Phase
from alembic_operator.client.plugin import connecting, inventory, logs, reading, runbook, stories


class Refused(Exception):
    """The command does not apply to the run as it is (e.g. approving a run that holds nothing)."""


def _in_phase(conn: connecting.Connection, name: str, wanted: Phase, waiting: str) -> dict[str, Any]:
    """The run, if it is in ``wanted``; else Refused, saying that no ``waiting`` waits for a decision."""
    run = reading.get_run(conn, name)
    phase = (run.get("status") or {}).get("phase") or Phase.PENDING.value
    if phase != wanted.value:
        raise Refused(f"MigrationRun {name} is {phase}, not {wanted.value}: no {waiting} waits for a decision")
    return run


def _held(conn: connecting.Connection, name: str) -> dict[str, Any]:
    return _in_phase(conn, name, Phase.ROLLBACK_HELD, "restore")


def _decide_as_self(conn: connecting.Connection, name: str, annotation: str) -> str:
    """Set ``annotation`` on the run to the caller's own name (the admission policy accepts no other)."""
    user = reading.whoami(conn)
    reading.annotate(conn, name, {annotation: user})
    return user


def status(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Tell a run's story: phase, revisions, backup, each step's Job and outcome, times."""
    return stories.status_story(reading.get_run(conn, args.run))


def why(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Say why a run failed and what to do next."""
    return stories.why_story(reading.get_run(conn, args.run))


def backups(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """List each database's backups (size, age, run) and what retention will remove."""
    return inventory.table(reading.list_runs(conn), namespace=conn.namespace, now=datetime.now(UTC))


def approve(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Approve a held restore as yourself (needs the verb approve on migrationruns)."""
    _held(conn, args.run)
    user = _decide_as_self(conn, args.run, constants.ANNOTATION_APPROVE_RESTORE)
    return (
        f"approved the held restore of {args.run} as {user} "
        f"({constants.ANNOTATION_APPROVE_RESTORE}={user}); the operator restores now — "
        f"`kubectl alembic status {args.run} -n {conn.namespace}` follows it"
    )


def reject(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Keep the database as it is: delete the held run (its backup stays in S3)."""
    run = _held(conn, args.run)
    uri = ((run.get("status") or {}).get("backup") or {}).get("uri") or "none"
    reading.delete_run(conn, args.run)
    return (
        f"rejected the held restore of {args.run}: the run is deleted and the database stays as the failed "
        f"migration left it (a write fence, if any, is lifted); the backup stays at {uri}"
    )


def _decide_migration(conn: connecting.Connection, name: str, annotation: str, verb: str, then: str) -> str:
    """Set ``annotation`` as yourself on a run in AwaitingApproval; say what was decided and what follows."""
    _in_phase(conn, name, Phase.AWAITING_APPROVAL, "migration")
    user = _decide_as_self(conn, name, annotation)
    return f"{verb} the migration of {name} as {user} ({annotation}={user}); {then}"


def approve_migration(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Approve a migration that waits for approval, as yourself (needs the verb approve on migrationruns)."""
    then = f"the run goes on to the backup — `kubectl alembic status {args.run} -n {conn.namespace}` follows it"
    return _decide_migration(conn, args.run, constants.ANNOTATION_APPROVE_MIGRATION, "approved", then)


def reject_migration(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Reject a migration that waits for approval, as yourself: the run fails, the database is not touched."""
    then = "the run ends Failed with no backup and no migration"
    return _decide_migration(conn, args.run, constants.ANNOTATION_REJECT_MIGRATION, "rejected", then)


def restore(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Print the exact commands that restore the run's backup by hand, with a rollback's checks."""
    return runbook.runbook(reading.get_run(conn, args.run))


def step_logs(conn: connecting.Connection, args: argparse.Namespace) -> str:
    """Print the step pods' logs in step order."""
    return logs.collect(conn, args.run, warn=lambda text: print(text, file=sys.stderr))


COMMANDS: dict[str, Callable[[connecting.Connection, argparse.Namespace], str]] = {
    "status": status,
    "why": why,
    "backups": backups,
    "approve": approve,
    "reject": reject,
    "approve-migration": approve_migration,
    "reject-migration": reject_migration,
    "restore": restore,
    "logs": step_logs,
}


def build_parser() -> argparse.ArgumentParser:
    """The parser: one subcommand per :data:`COMMANDS` entry, its help the function's first docstring line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the runs' namespace (default: the context's)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser = argparse.ArgumentParser(prog="kubectl alembic", description="Operate alembic-operator MigrationRuns.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        helptext = (command.__doc__ or "").splitlines()[0]
        cmd = sub.add_parser(name, parents=[common], help=helptext, description=helptext)
        if name != "backups":
            cmd.add_argument("run", help="MigrationRun name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kubectl-alembic``; 0 on success, 1 when refused or not found."""
    args = build_parser().parse_args(argv)
    try:
        conn = connecting.connect(kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace)
        print(COMMANDS[args.command](conn, args))
    except (reading.NotFound, Refused, runbook.NoBackup) as exc:
        print(f"kubectl alembic {args.command}: {exc}", file=sys.stderr)
        return 1
    except ApiException as exc:
        print(f"kubectl alembic {args.command}: the apiserver refused: {reading.api_error(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
