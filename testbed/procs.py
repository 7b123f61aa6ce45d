"""Start and stop the test bed's server processes, with logs kept in files.

Each server runs in its own process group so a stop also ends its children;
a server that dies early fails loudly with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Server:
    """A running server process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        """Raise with the log tail if the server has exited."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Signal the process group, wait, then SIGKILL whatever is left."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)


def start(
    name: str, argv: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Server:
    """Start ``argv`` in a new session with stdout and stderr to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            list(map(str, argv)), stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True
        )
    return Server(name=name, popen=popen, log_path=log_path, argv=list(map(str, argv)))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1, server: Server | None = None):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until truthy; fail with ``what`` (and the server log) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if server is not None:
            server.check_alive()
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not ready yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n{server.log_tail()}" if server else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)
