"""Test-bed fixtures come from plugins in testbed/ (real servers, started lazily, once per session).

A missing tool or server fails the run loudly (testbed.tools.MissingTool); nothing here skips.
"""

pytest_plugins = ["testbed.pytest_cluster", "testbed.pytest_data", "testbed.pytest_operator"]
