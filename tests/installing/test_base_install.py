"""The base install (no extras) runs every job step; the job steps never load Kubernetes or Kopf.

An application's image installs alembic-operator to run plan, migrate and wait in its own
pods (``client`` adds ``run`` for the Helm hook). These tests hold the packaging to that:
the base set is exactly image/requirements-base.txt, each job step's command works there,
and neither the job steps nor the contract (``api``) import kopf, kubernetes or
prometheus_client, even where those are installed (the project's .venv).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.installing import locks
from tests.installing.venvs import BaseVenv

ROOT = Path(__file__).resolve().parents[2]
JOB_STEPS = ("backup", "migrate", "verify", "restore", "plan", "wait")
EXTRAS_ONLY = ("kopf", "kubernetes", "prometheus_client")
"""Top-level modules only the ``client``/``controller`` extras bring."""

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import alembic_operator.api, alembic_operator.job
names = [m.name for pkg in (alembic_operator.api, alembic_operator.job)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""

FIND_EXTRAS = """
import importlib.util, json, sys
print(json.dumps({name: importlib.util.find_spec(name) is not None for name in sys.argv[1:]}))
"""


def run(venv: BaseVenv, argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=venv.env(**env), capture_output=True, text=True, timeout=120)


def test_the_base_install_is_exactly_the_base_lock_and_the_wheel(base_venv, tmp_path):
    script = "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
    r = run(base_venv, [str(base_venv.python), "-c", script], tmp_path)
    assert r.returncode == 0, r.stderr
    installed = {locks.canonical(name) for name in json.loads(r.stdout)}
    assert installed == locks.locked_names(locks.BASE) | {"alembic-operator"}

    r = run(base_venv, [str(base_venv.python), "-c", FIND_EXTRAS, *EXTRAS_ONLY], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {name: False for name in EXTRAS_ONLY}


@pytest.mark.parametrize("step", JOB_STEPS)
def test_each_job_step_command_runs_in_the_base_install(base_venv, tmp_path, step):
    r = run(base_venv, [str(base_venv.cli), step, "--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: alembic-operator {step}"), r.stdout


def test_every_api_and_job_module_imports_in_the_base_install(base_venv, tmp_path):
    r = run(base_venv, [str(base_venv.python), "-c", IMPORT_EVERY_MODULE], tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert {f"alembic_operator.job.commands.{step}" for step in JOB_STEPS} <= set(result["imported"])
    assert not set(EXTRAS_ONLY) & set(result["loaded"])


def test_job_steps_load_no_kubernetes_even_where_it_is_installed(tmp_path):
    """In the project's venv, which has every extra: importing the job steps must not pull them in."""
    r = subprocess.run([sys.executable, "-c", FIND_EXTRAS, *EXTRAS_ONLY], capture_output=True, text=True)
    assert json.loads(r.stdout) == {name: True for name in EXTRAS_ONLY}, "the .venv should have every extra"
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert not set(EXTRAS_ONLY) & set(json.loads(r.stdout)["loaded"])


def test_run_without_the_client_extra_says_what_is_missing(base_venv, tmp_path):
    r = run(base_venv, [str(base_venv.cli), "run", "--help"], tmp_path)
    assert r.returncode != 0
    assert "kubernetes" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_plan_renders_the_example_app_offline_in_the_base_install(base_venv, tmp_path):
    """The base install plus the app's own libraries (sqlmodel): what an app image's plan Job has."""
    term = tmp_path / "termination-log"
    r = run(
        base_venv,
        [
            str(base_venv.cli),
            "--termination-message-path",
            str(term),
            "plan",
            "--from",
            "base",
            "--config",
            str(ROOT / "alembic" / "example" / "alembic.ini"),
        ],
        tmp_path,
        PYTHONPATH=str(base_venv.app_site),
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(term.read_text())
    assert result["data"]["pending"] == ["0001", "0002", "0003", "0004"]
    assert "CREATE TABLE task" in r.stdout


def test_backup_help_start_up_time_in_the_base_install(base_venv, tmp_path, summary_line):
    """Every step pod pays the start-up; recorded in the summary (the best of three runs)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = run(base_venv, [str(base_venv.cli), "backup", "--help"], tmp_path)
        times.append(time.perf_counter() - t0)
        assert r.returncode == 0, r.stderr
    summary_line(
        f"`alembic-operator backup --help` in the base install: {min(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    )
