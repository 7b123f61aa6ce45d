"""Reading image/lock.sh's lock files: which distributions a kind of install holds.

Shared by tests/installing (the base venv) and tests/image (what each image carries).
Must not: resolve or install anything.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "image" / "requirements-base.txt"
"""The base install: the job steps."""
CLIENT = ROOT / "image" / "requirements-client.txt"
"""Base + ``client``: what an app image installs."""
OPERATOR = ROOT / "image" / "requirements.txt"
"""Base + ``client`` + ``controller``: the operator image."""
EXAMPLE_APP = ROOT / "examples" / "app-image" / "requirements.txt"
"""The example app's own libraries, installed beside the client set in its image."""


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``PyYAML`` = ``pyyaml``, ``a_b`` = ``a-b``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_names(*locks: Path) -> set[str]:
    """The canonical names pinned (``name==version``) in these requirement files."""
    text = "\n".join(lock.read_text() for lock in locks)
    return {canonical(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, flags=re.M)}
