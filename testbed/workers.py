"""Which pytest-xdist worker this process is, for what the test bed must keep apart per worker.

``make test`` runs the suite under ``pytest -n N``: each worker is its own process with its
own session fixtures, so its own cluster, kubelet, operator, PostgreSQL servers and S3 server
(each in its own ``mkdtemp`` directory). What two workers could still share is machine-wide:
loopback ports (:mod:`testbed.ports` gives each worker its own block) and fixed directories
such as Helm's home (tests/helm/support.py names it per worker).

This module only reads the environment xdist sets; it must not start anything.
"""

from __future__ import annotations

import os

WORKER_ENV = "PYTEST_XDIST_WORKER"
"""Set by pytest-xdist in each worker: ``gw0``, ``gw1``, ..."""


def worker_name() -> str:
    """``gw0``, ``gw1``, ... under pytest-xdist; ``main`` in a serial run (or outside pytest)."""
    return os.environ.get(WORKER_ENV) or "main"


def worker_index() -> int | None:
    """0, 1, ... under pytest-xdist; None in a serial run."""
    name = os.environ.get(WORKER_ENV, "")
    digits = name.removeprefix("gw")
    return int(digits) if name.startswith("gw") and digits.isdigit() else None
