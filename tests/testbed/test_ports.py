"""Under pytest-xdist the workers' beds never compete for a loopback port.

``make test`` runs several workers, each starting its own apiserver, etcd, PostgreSQL and S3
servers on ports from :func:`testbed.ports.free_port`. Two workers handed the same port would
fail at random; a PostgreSQL server a fault test stopped must find its port still free when it
restarts. These tests hold :mod:`testbed.ports` to that, without starting any server.
"""

from __future__ import annotations

import socket

import pytest

from testbed import ports, workers


def _ports_of(worker: str, count: int, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    monkeypatch.setenv(workers.WORKER_ENV, worker)
    monkeypatch.setattr(ports, "_handed_out", set())  # as a fresh worker process
    return {ports.free_port() for _ in range(count)}


def test_each_worker_takes_ports_from_its_own_block_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    ephemeral_low = int(ports.EPHEMERAL_RANGE.read_text().split()[0])
    taken = {worker: _ports_of(worker, 40, monkeypatch) for worker in ("gw0", "gw1", "gw2", "gw3")}
    for index, worker in enumerate(taken):
        low = ports.FIRST_BLOCK_PORT + index * ports.BLOCK_SIZE
        assert all(low <= port < low + ports.BLOCK_SIZE < ephemeral_low for port in taken[worker]), worker
    assert len(set.union(*taken.values())) == 4 * 40, "two workers were handed the same port"


SPARE_PORTS = 31900
"""Tiny blocks from here on, out of the way of the real workers' blocks (gw0 starts at 20000)."""


def test_a_port_is_never_handed_out_twice_even_after_its_server_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "FIRST_BLOCK_PORT", SPARE_PORTS)
    monkeypatch.setattr(ports, "BLOCK_SIZE", 5)
    handed = _ports_of("gw7", 5, monkeypatch)
    assert len(handed) == 5  # the whole block, though every port was free again at once
    with pytest.raises(RuntimeError, match="no free loopback port"):
        ports.free_port()


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "FIRST_BLOCK_PORT", SPARE_PORTS)
    monkeypatch.setattr(ports, "BLOCK_SIZE", 3)
    low = SPARE_PORTS + 9 * 3
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", low))
        listener.listen()
        assert _ports_of("gw9", 2, monkeypatch) == {low + 1, low + 2}


def test_a_serial_run_asks_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.WORKER_ENV, raising=False)
    ephemeral_low = int(ports.EPHEMERAL_RANGE.read_text().split()[0])
    assert workers.worker_name() == "main" and ports.worker_block() is None
    assert all(port >= ephemeral_low for port in _ports_of("", 10, monkeypatch))
