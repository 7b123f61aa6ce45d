"""The chart's alerts are unit-tested by `promtool test rules`, and those tests catch a broken rule;
every dashboard query parses (promtool's PromQL parser) and selects only the operator's metrics.

promtool is built from the Prometheus Go module (tools/promtool/). The metric names are checked
against a real scrape of the operator in tests/release/test_release.py, where a run has Succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import alerting, support

ALERTS = sorted(alerting.alerts(alerting.rule_groups()))


def _test_rules(tmp_path: Path, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of alerts_test.yaml against ``groups`` written as its rules.yaml."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(alerting.UNIT_TESTS, tmp_path / "alerts_test.yaml")
    return support.run([alerting.promtool(), "test", "rules", "alerts_test.yaml"], cwd=tmp_path, check=False)


def test_every_alert_has_unit_tests_and_they_pass(tmp_path: Path) -> None:
    tested = {
        t["alertname"] for g in yaml.safe_load(alerting.UNIT_TESTS.read_text())["tests"] for t in g["alert_rule_test"]
    }
    assert (
        tested
        == set(ALERTS)
        == {
            "AlembicOperatorRollbackHeld",
            "AlembicOperatorRollbackFailed",
            "AlembicOperatorRunStuck",
            "AlembicOperatorBackupFailing",
            "AlembicOperatorDown",
        }
    )
    check = support.run(
        [alerting.promtool(), "check", "rules", "/dev/stdin"], input=yaml.safe_dump({"groups": alerting.rule_groups()})
    )
    assert "SUCCESS: 5 rules found" in check.stdout, check.stdout
    proc = _test_rules(tmp_path, alerting.rule_groups())
    print(proc.stdout)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("alert", ALERTS)
def test_the_unit_tests_fail_when_a_rule_never_fires_or_fires_at_once(tmp_path: Path, alert: str) -> None:
    """Two breakages per alert: its expression can no longer be true, and its `for` (or range) is gone."""
    groups = alerting.rule_groups()
    rule = alerting.alerts(groups)[alert]
    rule["expr"] = f"({rule['expr']}) > 1000"
    never = _test_rules(tmp_path, groups)
    print(f"--- {alert} never fires: promtool test rules exits {never.returncode}\n{never.stderr[-1200:]}")
    assert never.returncode != 0 and f"alertname: {alert}" in never.stderr, never.stdout + never.stderr
    groups = alerting.rule_groups()
    rule = alerting.alerts(groups)[alert]
    if "for" in rule:
        del rule["for"]
    else:  # a window instead: 1h -> 100h keeps alerting long after the failure
        rule["expr"] = rule["expr"].replace("[1h]", "[100h]")
    early = _test_rules(tmp_path, groups)
    print(f"--- {alert} fires early: promtool test rules exits {early.returncode}\n{early.stderr[-1200:]}")
    assert early.returncode != 0 and f"alertname: {alert}" in early.stderr, early.stdout + early.stderr


def test_every_dashboard_query_parses_and_a_broken_one_does_not() -> None:
    for expr in [*alerting.dashboard_queries(), *(r["expr"] for r in alerting.alerts(alerting.rule_groups()).values())]:
        proc = support.run([alerting.promtool(), "--experimental", "promql", "format", expr], check=False)
        assert proc.returncode == 0, f"{expr!r} does not parse: {proc.stderr}"
    broken = support.run([alerting.promtool(), "--experimental", "promql", "format", "sum(rate(x[5m])"], check=False)
    assert broken.returncode != 0 and "unclosed left parenthesis" in broken.stderr, broken.stderr


def test_the_dashboard_and_alerts_use_only_operator_metrics_and_up() -> None:
    """The names, by prefix: the exact check against a real /metrics page is in tests/release."""
    used = {n for e in alerting.dashboard_queries() for n in alerting.metric_names(e)}
    used |= {n for r in alerting.alerts(alerting.rule_groups()).values() for n in alerting.metric_names(r["expr"])}
    assert used - alerting.SCRAPE_SERIES and all(
        n.startswith("alembic_operator_") for n in used - alerting.SCRAPE_SERIES
    ), used
