"""Fixtures and helpers of the Helm / GitOps tests: real helm, kubectl, kstatus and Lua.

Everything here drives the real binaries built by tools/build.sh (helm v4,
kubectl, the kstatus command over sigs.k8s.io/cli-utils) and the real test bed
(testbed.pytest_cluster, testbed.pytest_data). Nothing is mocked.
"""

from __future__ import annotations

