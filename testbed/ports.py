"""Free loopback ports for the servers the test bed starts, never the same one twice.

Under pytest-xdist each worker takes its ports from its own block below the kernel's
ephemeral range (:data:`FIRST_BLOCK_PORT` + index × :data:`BLOCK_SIZE`), so two workers
never race for one port, and a server a fault test stopped keeps its port free for its
restart: no other worker, and no outgoing connection (those get ephemeral ports), can take
it meanwhile. A serial run asks the kernel (port 0), as before. Either way a process never
hands out a port twice.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

from testbed import workers

FIRST_BLOCK_PORT = 20000
BLOCK_SIZE = 1000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")

_handed_out: set[int] = set()
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_block() -> range | None:
    """This worker's ports, or None (serial run, or a block that would reach the ephemeral range)."""
    index = workers.worker_index()
    if index is None:
        return None
    block = range(FIRST_BLOCK_PORT + index * BLOCK_SIZE, FIRST_BLOCK_PORT + (index + 1) * BLOCK_SIZE)
    ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32768
    return block if block.stop <= ephemeral_low else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and this process has not handed out."""
    block = worker_block()
    with _lock:
        for _ in range(200):
            port = random.choice(block) if block is not None else _kernel_port()
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free loopback port in {block or 'the ephemeral range'} after 200 tries")


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on ``port``; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.1)
