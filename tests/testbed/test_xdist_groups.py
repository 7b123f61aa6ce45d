"""`make test`'s workers really keep a module-scoped bed on one worker (tests/conftest.py's groups).

The grouping was silently lost twice: our hook ran after xdist's (which reads the marker), and
pytest 9.2 ignores the node id xdist rewrites (pytest-dev/pytest-xdist#1386) — each time every
Helm or plugin module's bed was set up on up to three workers, minutes of CI. A child pytest
with the real conftest hook and ``-n 3 --dist loadgroup`` counts the setups of a module fixture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testbed import tools

CONFTEST = "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
SHARED_MODULE = """
import os
import pytest

@pytest.fixture(scope="module")
def bed():
    with open(os.environ["SETUPS"], "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    yield

"""


def test_a_module_scoped_bed_is_set_up_once_under_three_workers(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_shared.py").write_text(
        SHARED_MODULE + "".join(f"def test_{i}(bed):\n    pass\n\n" for i in range(6))
    )
    (suite / "test_other.py").write_text("".join(f"def test_other_{i}():\n    pass\n\n" for i in range(30)))
    setups = tmp_path / "setups.log"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist", "loadgroup", str(suite)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tools.REPO), "SETUPS": str(setups)},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(setups.read_text().split()) == 1, f"module fixture set up on: {setups.read_text().split()}"
