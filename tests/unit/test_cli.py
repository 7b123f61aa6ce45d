"""The command line starts fast: it imports only the subcommand it runs, and its help stays true."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from alembic_operator import cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_each_one_line_help_is_the_first_line_of_its_modules_help(name: str) -> None:
    module = importlib.import_module(cli.SUBCOMMANDS[name].module)
    assert cli.SUBCOMMANDS[name].help == module.HELP.strip().splitlines()[0]


def _modules_imported_by(argv: list[str]) -> set[str]:
    """Run the CLI in a fresh interpreter and list which subcommand modules and clients it imported."""
    probe = (
        "import json, sys\n"
        "from alembic_operator import cli\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "watched = set(cli.COMMANDS.values()) | {'kopf', 'kubernetes', 'boto3', 'alembic', 'sqlalchemy'}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m in watched)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_help_imports_no_subcommand_module_and_no_heavy_library() -> None:
    assert _modules_imported_by(["--help"]) == set()


def test_a_subcommands_help_imports_only_its_own_module() -> None:
    imported = _modules_imported_by(["verify", "--help"])
    assert imported & set(cli.COMMANDS.values()) == {"alembic_operator.job.commands.verify"}
    assert not imported & {"kopf", "kubernetes", "alembic"}


def test_a_subcommand_gets_its_own_flags_and_the_others_none() -> None:
    parser = cli.build_parser("verify")
    args = parser.parse_args(["verify", "--location", "s3://b/p/r/", "--mode", "estimated"])
    assert (args.command, args.mode, args.location) == ("verify", "estimated", "s3://b/p/r/")
    with pytest.raises(SystemExit):
        parser.parse_args(["backup", "--location", "s3://b/p/r/"])


def test_commands_lists_every_subcommand_with_its_module() -> None:
    assert {name: sub.module for name, sub in cli.SUBCOMMANDS.items()} == cli.COMMANDS
    assert set(cli.COMMANDS) == {
        "operator",
        "backup",
        "migrate",
        "verify",
        "restore",
        "plan",
        "wait",
        "run",
        "rehearse",
        "drift",
        "downgrade",
    }
