"""A stand-in for the application's old version that keeps serving during a migration: it inserts a
project row every ~50 ms and remembers every row whose INSERT committed.

Two ways to run it:

* in the test process, :class:`Writer` (a thread with its own asyncpg connection), and
* as a Deployment's container on the bed's node (image ``writer:dev``, the example app's image with
  this checkout's tests/ mounted): ``python -m tests.e2e.writer`` with DATABASE_URL from the Secret;
  it appends each committed row's name to ``$WRITER_LOG`` and stops on SIGTERM, which is what scaling
  the Deployment to zero sends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg

INTERVAL_SECONDS = 0.05
INSERT = "INSERT INTO project (name, created_at) VALUES ($1, now())"


async def _loop(url: str, prefix: str, stop: Callable[[], bool], committed: Callable[[str], None]) -> None:
    conn = None
    n = 0
    try:
        while not stop():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(dsn=url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
                name = f"{prefix}-{n}"
                await conn.execute(INSERT, name)  # autocommit: committed when it returns
                committed(name)
                n += 1
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                # A restore holds locks or drops the table for a moment: a real app would retry too.
                if conn is not None and not conn.is_closed():
                    conn.terminate()
                conn = None
                await asyncio.sleep(0.2)
            await asyncio.sleep(INTERVAL_SECONDS)
    finally:
        if conn is not None and not conn.is_closed():
            await conn.close()


class Writer:
    """The writer in a background thread of the test: ``start()``, then ``stop()`` returns what committed."""

    def __init__(self, url: str, prefix: str = "writer") -> None:
        self.url = url
        self.prefix = prefix
        self.committed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer-{prefix}", daemon=True)

    def _run(self) -> None:
        asyncio.run(_loop(self.url, self.prefix, self._stop.is_set, self.committed.append))

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=30)
        return list(self.committed)


def main() -> int:
    """The container's entry point (see the module docstring)."""
    url = os.environ["DATABASE_URL"]
    log_path = Path(os.environ["WRITER_LOG"])
    prefix = os.environ.get("WRITER_PREFIX", "deployment")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:

        def committed(name: str) -> None:
            log.write(name + "\n")
            log.flush()

        pid_prefix = f"{prefix}-{os.getpid()}"
        asyncio.run(_loop(url, pid_prefix, stopping.is_set, committed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
