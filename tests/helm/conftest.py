"""Fixtures and helpers of the Helm / GitOps tests: real helm, kubectl, kstatus and Lua.

Everything here drives the real binaries built by tools/build.sh (helm v4,
kubectl, the kstatus command over sigs.k8s.io/cli-utils) and the real test bed
(testbed.pytest_cluster, testbed.pytest_data). Nothing is mocked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm import support


@pytest.fixture(scope="module")
def app_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of charts/example-app with its dependency on the hook chart built (helm dependency build)."""
    return support.app_chart_copy(tmp_path_factory.mktemp("charts"))
