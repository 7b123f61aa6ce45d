"""A namespace pinned with :func:`testbed.netns.pinned` keeps its number while it is checked.

The kernel gives a freed namespace's inode number to the next namespace made, so a leftovers
check by number after a bed's last process has gone can find another worker's new pod sandbox
(it did once in CI: a ``runc init`` "left" in a bed's network namespace). These tests show the
reuse is real on this kernel, so the pin is needed, and that a pin prevents it.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from testbed import netns, procs, tools

UNSHARE = str(tools.system_binary("unshare", "install util-linux (apt-get install util-linux)"))


def _sleeper() -> subprocess.Popen[bytes]:
    """A process alone in a new network namespace."""
    return subprocess.Popen([UNSHARE, "--net", "sleep", "60"])


def _inode_once_in(process: subprocess.Popen[bytes]) -> int:
    """The process's network namespace number, once unshare has moved it there."""
    own = netns.namespace_inode()
    moved = procs.wait_until(
        lambda: (inode := netns.namespace_inode(process.pid)) != own and inode,
        2,
        "unshare to enter a new network namespace",
        interval=0.01,
    )
    return int(moved)


def _end(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=10)


def _made_again(inode: int, within: float) -> bool:
    """Whether a namespace made within ``within`` seconds — ours, or another xdist worker's that
    took it first — has ``inode`` (a freed network namespace's numbers are returned by a kernel
    worker, a moment after its last process has gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        made = [_sleeper() for _ in range(3)]
        try:
            if inode in {_inode_once_in(process) for process in made} or netns.processes_in(inode):
                return True
        finally:
            for process in made:
                _end(process)
        time.sleep(0.2)
    return False


def test_a_freed_namespace_number_goes_to_a_namespace_made_after_it() -> None:
    first = _sleeper()
    inode = _inode_once_in(first)
    _end(first)
    assert netns.processes_in(inode) == []
    # why a check by number alone can name a stranger; 30 s: the kernel frees a namespace in a worker that,
    # with four beds tearing theirs down at once, took over 10 s in CI (ci31)
    assert _made_again(inode, within=30)


def test_a_pinned_namespace_keeps_its_number_after_its_last_process_is_gone() -> None:
    first = _sleeper()
    inode = _inode_once_in(first)
    with netns.pinned(inode):
        _end(first)
        assert netns.processes_in(inode) == []
        assert not _made_again(inode, within=3)


def test_pinning_a_namespace_no_process_is_in_is_refused() -> None:
    first = _sleeper()
    inode = _inode_once_in(first)
    _end(first)
    with pytest.raises(LookupError, match=f"no process is in the net namespace {inode}"), netns.pinned(inode):
        pass
