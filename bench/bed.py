"""The pieces of the test bed a benchmark needs, started once per ``python -m bench`` run.

PostgreSQL 15 (Debian: server, pg_dump, pg_restore and psql of one major) and
the S3 server always; the Kubernetes part (etcd, apiserver, controller
manager, the real node — containerd, runc, kubelet, scheduler, pods from the
images ``make image`` built — and the operator as its ServiceAccount) only for
the operator benchmarks. Like the test suites, the process first enters the
bed's own network namespace (:mod:`testbed.netns`; root), so PostgreSQL and S3
listen on the node IP the pods reach. Everything lives under one temp dir and
is torn down at the end (``--keep`` keeps the dir for a post-mortem).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed import netns, operating, tools
from testbed.cluster import Cluster
from testbed.node import Node
from testbed.postgres import PostgresServer
from testbed.s3 import S3Server

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
APICOUNT_DIR = Path(__file__).resolve().parent / "apicount"

#: How a step's container runs when replayed by hand on this host (overhead.replay_steps): the project's
#: venv first on PATH, and the operator image's ENTRYPOINT and WORKDIR (image/Dockerfile).
BY_HAND_IMAGES: dict[str, dict[str, Any]] = {
    "alembic-operator:dev": {
        "env": {"PATH": f"{VENV_BIN}:$PATH", "VIRTUAL_ENV": str(REPO / ".venv")},
        "entrypoint": ["alembic-operator"],
        "workingDir": "/tmp",
    },
    # examples/app-image/Dockerfile copies alembic/ to /app and works in /app/example.
    "example-app:dev": {
        "env": {"PATH": f"{VENV_BIN}:$PATH", "VIRTUAL_ENV": str(REPO / ".venv")},
        "workingDir": str(REPO / "alembic" / "example"),
    },
}


class Bed:
    def __init__(self, workdir: Path, *, major: int = 15, network: netns.BedNetwork | None = None) -> None:
        self.workdir = workdir
        self.network = network
        self.pg = PostgresServer(major)
        self.s3 = S3Server()
        self.cluster: Cluster | None = None
        self.kubelet: Node | None = None
        self.operator: operating.OperatorProcess | None = None
        self.api_counts: Path | None = None
        self.operator_env: dict[str, str] = {}
        """Extra environment for the operator process (``--operator-env``, for experiments)."""
        self.trace_memory = False
        """Run the operator under tracemalloc (``--tracemalloc``): its top allocation sites at its traced peak."""
        self.max_pods = 110
        """The node's maxPods (set before :meth:`start_cluster`): the scale benchmark raises it."""
        self.tracemalloc: Path | None = None

    # -- data plane ----------------------------------------------------------------------------
    def start_data(self) -> None:
        self.pg.start(self.workdir / "pg")
        self.s3.start(self.workdir / "s3")

    def step_env(self, database_url: str) -> dict[str, str]:
        """What a step pod gets: the DB URL, S3 settings, AWS credentials, the client majors."""
        env = dict(os.environ)
        env.update(self.s3.env())
        env.update(
            {
                "DATABASE_URL": database_url,
                "S3_ENDPOINT": self.s3.endpoint,
                "S3_FORCE_PATH_STYLE": "true",
                "S3_REGION": self.s3.region,
                "PG_BIN_DIRS": str(self.pg.bin_dir),
                "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            }
        )
        return env

    # -- control plane -------------------------------------------------------------------------
    def start_cluster(self) -> None:
        if self.cluster is not None:
            return
        assert self.network is not None, "the bed's network namespace was not entered"
        tools.binary("kubelet")  # a missing tool fails here, before anything starts
        self.cluster = Cluster(node_ip=self.network.node_ip)
        self.cluster.start(self.workdir / "cluster")
        self.kubelet = Node(self.cluster, self.workdir / "node", self.network, max_pods=self.max_pods)
        self.kubelet.start()
        operating.register_images(self.kubelet)
        self.operator = operating.OperatorProcess(self.cluster, self.workdir / "operator")
        self.operator.workdir.mkdir(parents=True, exist_ok=True)
        self.operator.setup()
        self.start_operator()

    def start_operator(self) -> None:
        """(Re)start the operator with the request counter loaded (bench/apicount/sitecustomize.py)."""
        assert self.operator is not None
        self.api_counts = self.operator.workdir / f"api-requests-{self.operator.starts + 1}.json"
        self.tracemalloc = (
            self.operator.workdir / f"tracemalloc-{self.operator.starts + 1}.json" if self.trace_memory else None
        )
        saved = {
            k: os.environ.get(k) for k in ("PYTHONPATH", "BENCH_API_COUNTS", "BENCH_TRACEMALLOC", *self.operator_env)
        }
        os.environ.update(self.operator_env)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APICOUNT_DIR), saved["PYTHONPATH"]]))
        os.environ["BENCH_API_COUNTS"] = str(self.api_counts)
        if self.tracemalloc is not None:
            os.environ["BENCH_TRACEMALLOC"] = str(self.tracemalloc)
        try:
            self.operator.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def restart_operator(self) -> None:
        assert self.operator is not None
        self.operator.stop()
        self.start_operator()

    def tracemalloc_top(self) -> dict[str, Any] | None:
        """The operator's traced peak and its top allocation sites then (None unless ``trace_memory``)."""
        if self.tracemalloc is None:
            return None
        time.sleep(5.5)  # the tracer writes every 5 s
        try:
            return dict(json.loads(self.tracemalloc.read_text()))
        except (OSError, ValueError):
            return None

    def operator_pid(self) -> int:
        assert self.operator is not None and self.operator.server is not None
        return self.operator.server.popen.pid

    def stop(self) -> None:
        for action in (
            lambda: self.operator and self.operator.stop(),
            lambda: self.kubelet and self.kubelet.stop(),
            lambda: self.cluster and self.cluster.stop(),
            self.s3.stop,
            self.pg.destroy,
            lambda: self.network and self.network.leave(),
        ):
            with contextlib.suppress(Exception):
                action()


@contextlib.contextmanager
def bed(keep: bool = False) -> Iterator[Bed]:
    workdir = Path(tempfile.mkdtemp(prefix="alembic-operator-bench-", dir="/tmp"))
    b = Bed(workdir, network=netns.enter())
    try:
        b.start_data()
        yield b
    finally:
        b.stop()
        if keep:
            print(f"bench bed kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def vm_hwm_kb(pid: int) -> dict[str, Any]:
    """VmHWM (peak RSS) and VmRSS of a process, in kB, from /proc."""
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out
