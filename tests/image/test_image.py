"""The image users pull, built for real (buildah, debootstrap base) and run for real (runc).

No skips: a missing tool fails with how to install it (`make image-deps`), and the
first test of a session builds the images (`make image`; cached by content).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from alembic_operator.cli import COMMANDS
from testbed import containers
from tests.installing import locks

pytestmark = pytest.mark.timeout(1800)  # a cold build (debootstrap + two images) takes minutes

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "alembic-operator:dev"
APP = "example-app:dev"
PG_MAJORS = (15, 16, 17, 18)
EXTRAS_ONLY = {"kopf", "prometheus-client"}
"""Distributions only the ``controller`` extra brings: the operator image's, never an app image's."""
APP_STEPS = ("plan", "migrate", "wait", "run")
"""The commands MigrationRuns and the Helm hook run in the application's image."""


def sh(image: str, script: str, **kw) -> containers.Completed:
    return containers.run(image, command=["sh", "-c", script], timeout=kw.pop("timeout", 120), **kw)


# ------------------------------------------------------------------ operator image


def test_help_runs_as_non_root_on_read_only_root(built_images):
    r = containers.run(OPERATOR, args=["--help"], read_only_root=True, timeout=120)
    assert r.exit_code == 0, r.output
    assert "usage: alembic-operator" in r.output

    r = sh(
        OPERATOR,
        "id -u; id -g; touch /opt/x 2>&1 || echo ROOT-READ-ONLY; touch /tmp/x && echo TMP-WRITABLE",
        read_only_root=True,
    )
    assert r.exit_code == 0, r.output
    uid, gid, *_ = r.output.split("\n")
    assert int(uid) != 0 and int(uid) == 1000 and int(gid) == 1000, r.output
    assert "ROOT-READ-ONLY" in r.output and "Read-only file system" in r.output
    assert "TMP-WRITABLE" in r.output


def test_image_config_is_what_the_code_expects(built_images):
    img = containers.find_image(OPERATOR)
    cfg = img.config
    assert cfg["Entrypoint"] == ["alembic-operator"]
    assert cfg["User"] == "1000:1000"
    env = dict(item.split("=", 1) for item in cfg["Env"])
    assert env["PG_BIN_DIRS"].split(":") == [f"/usr/lib/postgresql/{m}/bin" for m in sorted(PG_MAJORS, reverse=True)]
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/alembic-operator/bin:")
    labels = cfg["Labels"]
    for key in ("title", "version", "revision", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.title"] == "alembic-operator"
    assert "/tmp" in (cfg.get("Volumes") or {})


def test_console_script_and_subcommands_match_cli(built_images):
    r = sh(
        OPERATOR,
        "command -v alembic-operator; command -v alembic; "
        "python3 -c 'import json; from alembic_operator.cli import COMMANDS; "
        "print(json.dumps(sorted(COMMANDS)))'",
    )
    assert r.exit_code == 0, r.output
    script, alembic, commands = r.output.strip().split("\n")[-3:]
    assert script == "/opt/alembic-operator/bin/alembic-operator"
    assert alembic == "/opt/alembic-operator/bin/alembic"
    assert json.loads(commands) == sorted(COMMANDS), "the image's CLI differs from this checkout's"

    r = containers.run(OPERATOR, args=["--help"], timeout=120)
    assert r.exit_code == 0, r.output
    listed = re.findall(r"^    (\w+)\s", r.output, flags=re.M)
    assert sorted(listed) == sorted(COMMANDS), r.output
    for name in COMMANDS:  # each step's own --help imports its module
        r = containers.run(OPERATOR, args=[name, "--help"], timeout=120)
        assert r.exit_code == 0, f"alembic-operator {name} --help:\n{r.output}"


@pytest.mark.parametrize("major", PG_MAJORS)
def test_client_tools_of_each_major(built_images, major):
    bindir = f"/usr/lib/postgresql/{major}/bin"
    r = sh(
        OPERATOR,
        f"for t in pg_dump pg_restore psql; do {bindir}/$t --version || exit 1; done; "
        f"ldd {bindir}/pg_dump {bindir}/pg_restore {bindir}/psql",
    )
    assert r.exit_code == 0, r.output
    for tool in ("pg_dump", "pg_restore", "psql"):
        assert re.search(rf"^{tool} \(PostgreSQL\) {major}\.\d+", r.output, flags=re.M), r.output
    assert "not found" not in r.output, r.output


def test_no_build_tools_left(built_images):
    r = sh(
        OPERATOR,
        "for t in pip pip3 gcc cc make apt-get; do command -v $t >/dev/null && echo HAS-$t; done; "
        "python3 -c 'import pip' 2>/dev/null && echo HAS-pip-module; "
        "/opt/alembic-operator/bin/python -c 'import setuptools' 2>/dev/null && echo HAS-setuptools; "
        "cat /etc/pip.conf 2>/dev/null; true",
    )
    assert r.exit_code == 0, r.output
    found = set(re.findall(r"HAS-([\w-]+)", r.output))
    # apt-get and dpkg belong to the Debian base (as in python:3.11-slim); pip/compilers must not be there
    assert not (found - {"apt-get"}), r.output


def test_loopback_port_on_the_host_is_reachable(built_images):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    got: list[bytes] = []

    def serve():
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = containers.run(
            OPERATOR,
            command=[
                "python3",
                "-c",
                f"import socket; c = socket.create_connection(('127.0.0.1', {port}), 5); "
                "c.sendall(b'ping'); print(c.recv(100).decode().strip())",
            ],
            timeout=60,
        )
    finally:
        server.close()
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith("pong") and got == [b"ping"]


# ------------------------------------------------------------------ runc plumbing


def test_termination_message_env_and_working_dir(built_images, tmp_path):
    term = tmp_path / "termination-log"
    script = 'pwd; echo "$GREETING $PG_BIN_DIRS"; echo \'{"ok": true}\' > /dev/termination-log'
    r = containers.run(
        OPERATOR,
        command=["sh", "-c", script],
        env={"GREETING": "hi", "PG_BIN_DIRS": "/usr/lib/postgresql/15/bin"},
        working_dir="/opt",
        termination_message_path=term,
        timeout=60,
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[:2] == ["/opt", "hi /usr/lib/postgresql/15/bin"]  # pod env over image env
    assert json.loads(term.read_text()) == {"ok": True}


def test_exit_code_and_kill(built_images):
    r = containers.run(OPERATOR, command=["sh", "-c", "exit 7"], timeout=60)
    assert r.exit_code == 7
    c = containers.run_container(image=OPERATOR, command=["sleep", "300"])
    deadline = time.monotonic() + 30
    while c.container_pid() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.container_pid() is not None, c.output()
    t0 = time.monotonic()
    assert c.kill() == 137
    assert time.monotonic() - t0 < 10
    state = subprocess.run(["runc", "--root", containers.RUNC_ROOT, "state", c.id], capture_output=True, text=True)
    assert state.returncode != 0, "the container is still known to runc after kill()"


def test_writable_root_leaves_the_cache_untouched(built_images):
    rootfs = containers.prepare_bundle(OPERATOR)
    r = sh(OPERATOR, "echo hi > /opt/written && cat /opt/written", read_only_root=False, user="0:0")
    assert r.exit_code == 0 and r.output.strip() == "hi", r.output
    assert not (rootfs / "opt" / "written").exists()


def test_kubernetes_command_args_rules():
    cfg = {"Entrypoint": ["alembic-operator"], "Cmd": ["--help"]}
    assert containers.resolve_argv(cfg, None, None) == ["alembic-operator", "--help"]
    assert containers.resolve_argv(cfg, None, ["migrate"]) == ["alembic-operator", "migrate"]
    assert containers.resolve_argv(cfg, ["alembic"], None) == ["alembic"]
    assert containers.resolve_argv(cfg, ["alembic"], ["heads"]) == ["alembic", "heads"]


# ------------------------------------------------------------------ example app image


def test_example_app_has_alembic_ini_in_workdir_and_heads_work(built_images):
    img = containers.find_image(APP)
    workdir = img.config["WorkingDir"]
    assert (img.rootfs / workdir.lstrip("/") / "alembic.ini").is_file()

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    expected = set(ScriptDirectory.from_config(Config(str(ROOT / "alembic" / "example" / "alembic.ini"))).get_heads())
    r = containers.run(APP, command=["alembic", "heads"], timeout=120)
    assert r.exit_code == 0, r.output
    assert {line.split()[0] for line in r.output.splitlines() if "(head)" in line} == expected, r.output
    r = sh(APP, "pwd; test -f alembic.ini && echo HAS-INI; id -u")
    assert r.output.split() == [workdir, "HAS-INI", "1000"], r.output


# ------------------------------------------------------------------ what each image carries


def installed_distributions(image: str) -> set[str]:
    """The canonical names of every distribution the image's python sees (importlib.metadata)."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))"
    )
    r = containers.run(image, command=["python3", "-c", script], timeout=120)
    assert r.exit_code == 0, r.output
    return {locks.canonical(name) for name in json.loads(r.output.strip().splitlines()[-1])}


def test_operator_image_carries_exactly_its_lock_with_both_extras(built_images):
    installed = installed_distributions(OPERATOR)
    assert installed == locks.locked_names(locks.OPERATOR) | {"alembic-operator"}
    assert EXTRAS_ONLY | {"kubernetes"} <= installed


def test_app_image_carries_the_client_set_and_the_apps_libraries_but_no_controller(built_images):
    installed = installed_distributions(APP)
    assert installed == locks.locked_names(locks.CLIENT, locks.EXAMPLE_APP) | {"alembic-operator"}
    assert not EXTRAS_ONLY & installed, sorted(EXTRAS_ONLY & installed)
    assert {"kubernetes", "sqlmodel"} <= installed


def test_app_image_runs_its_steps_without_postgresql_client_tools(built_images):
    for step in APP_STEPS:
        r = containers.run(APP, args=[step, "--help"], read_only_root=True, timeout=120)
        assert r.exit_code == 0, f"alembic-operator {step} --help:\n{r.output}"
    r = sh(APP, "command -v pg_dump psql pg_restore; ls /usr/lib/postgresql 2>&1; true")
    assert "/pg_dump" not in r.output and "No such file" in r.output, r.output


def test_app_image_plans_the_example_app_offline(built_images, tmp_path):
    """The plan Job of a MigrationRun, in the app image: its env.py, models (sqlmodel) and the base install."""
    term = tmp_path / "termination-log"
    r = containers.run(
        APP, args=["plan", "--from", "base"], read_only_root=True, termination_message_path=term, timeout=120
    )
    assert r.exit_code == 0, r.output
    assert "CREATE TABLE task" in r.output
    assert json.loads(term.read_text())["data"]["pending"] == ["0001", "0002", "0003", "0004"]
