"""The chart's alerts and dashboard as the tests read them: the rendered PrometheusRule, the dashboard's
queries made parseable, the metric names they use, and promtool (built by tools/promtool/build.sh).

Must not: decide what is right; tests/helm/test_alerts.py and tests/release/ assert.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.helm import support
from tests.helm.support import OPERATOR_CHART, find, render

DASHBOARD = OPERATOR_CHART / "dashboards" / "alembic-operator.json"
UNIT_TESTS = Path(__file__).parent / "alerts" / "alerts_test.yaml"
#: Grafana's variables, replaced by values PromQL accepts so that the queries parse as Prometheus will see them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": "ao-alembic-operator-metrics",
}
#: Series Prometheus makes itself for every target; every other name must come from the operator's /metrics.
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@functools.cache
def promtool() -> Path:
    """tools/promtool/build.sh's binary (built once, cached by its go.mod); a failed build fails loudly."""
    proc = subprocess.run(
        ["bash", str(support.REPO / "tools" / "promtool" / "build.sh")], stdout=subprocess.PIPE, text=True
    )
    assert proc.returncode == 0, "tools/promtool/build.sh failed; run it to see why"
    return Path(proc.stdout.strip().splitlines()[-1])


def rule_groups(*values: str) -> list[dict[str, Any]]:
    """spec.groups of the chart's PrometheusRule, rendered as release "ao" in namespace "ops"."""
    objs = render(
        OPERATOR_CHART, "--set", "metrics.prometheusRule.enabled=true", *values, release="ao", namespace="ops"
    )
    (rule,) = find(objs, "PrometheusRule")
    return list(rule["spec"]["groups"])


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def dashboard_queries() -> list[str]:
    """Every target expression of the dashboard, Grafana variables replaced, plus its variables' queries."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert exprs, f"{DASHBOARD} has no queries"
    for variable in board["templating"]["list"]:
        query = (variable.get("query") or {}) if isinstance(variable.get("query"), dict) else {}
        if "label_values(" in query.get("query", ""):
            exprs.append(re.sub(r"label_values\((\w+), *\w+\)", r"\1", query["query"]))
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: what is left of it without matchers, ranges, strings, label
    lists (``by (...)``), function names, keywords and numbers."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    words = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", bare)
    return {w for w, call in words if not call and w not in PROMQL_WORDS}


def exposed_names(page: str) -> set[str]:
    """Sample names of a Prometheus text page (histograms' _bucket/_count/_sum included)."""
    return {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line and not line.startswith("#")}
