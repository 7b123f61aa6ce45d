"""The pieces of the test bed a benchmark needs, started once per ``python -m bench`` run.

PostgreSQL 15 (Debian: server, pg_dump, pg_restore and psql of one major) and
the S3 server always; the Kubernetes part (etcd, apiserver, controller
manager, process kubelet, the operator as its ServiceAccount) only for the
operator benchmarks. Everything lives under one temp dir and is torn down at
the end (``--keep`` keeps the dir for a post-mortem).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed import operating
from testbed.cluster import Cluster
from testbed.kubelet import ProcessKubelet
from testbed.postgres import PostgresServer
from testbed.pytest_cluster import default_images
from testbed.s3 import S3Server

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
APICOUNT_DIR = Path(__file__).resolve().parent / "apicount"


class Bed:
    def __init__(self, workdir: Path, *, major: int = 15) -> None:
        self.workdir = workdir
        self.pg = PostgresServer(major)
        self.s3 = S3Server()
        self.cluster: Cluster | None = None
        self.kubelet: ProcessKubelet | None = None
        self.operator: operating.OperatorProcess | None = None
        self.api_counts: Path | None = None
        self.operator_env: dict[str, str] = {}
        """Extra environment for the operator process (``--operator-env``, for experiments)."""

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
        self.cluster = Cluster()
        self.cluster.start(self.workdir / "cluster")
        self.kubelet = ProcessKubelet(
            kubeconfig=self.cluster.kubeconfig, root=self.workdir / "kubelet", images=default_images()
        )
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
        saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "BENCH_API_COUNTS", *self.operator_env)}
        os.environ.update(self.operator_env)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APICOUNT_DIR), saved["PYTHONPATH"]]))
        os.environ["BENCH_API_COUNTS"] = str(self.api_counts)
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
        ):
            with contextlib.suppress(Exception):
                action()


@contextlib.contextmanager
def bed(keep: bool = False) -> Iterator[Bed]:
    workdir = Path(tempfile.mkdtemp(prefix="alembic-operator-bench-", dir="/tmp"))
    b = Bed(workdir)
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
