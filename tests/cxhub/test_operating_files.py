"""deploy/grafana/cxhub-dashboard.json and deploy/prometheus/alerts.yml: they parse, have the
shape Grafana and Prometheus load, and use only metrics /metrics gives; promtool (taken out of
Debian's `prometheus` package by `make obs-deps`, which `make test` runs) checks the rules' PromQL
and the exposition too."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "cxhub-dashboard.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
TOKEN = "operating-files-token-" + "o" * 32
# Series Prometheus makes itself, not cxhub.
PROMETHEUS_OWN = {"up"}
_NOT_NAMES = {
    "sum", "rate", "by", "histogram_quantile", "clamp_min", "topk", "le", "route", "status",
    "channel", "queue", "job", "and", "or", "unless", "on", "ignoring", "without", "bool",
}  # fmt: skip


def _metric_names(expr: str) -> set[str]:
    """The series an expression reads: identifiers that are neither functions, keywords nor
    labels (label names only appear inside braces or by-clauses, both stripped first)."""
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)
    stripped = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    stripped = re.sub(r'"[^"]*"|\[[^\]]*\]', "", stripped)  # strings, ranges ([5m])
    stripped = re.sub(r"\d+(?:\.\d+)?(?:e-?\d+)?", "", stripped)  # numbers (1e-9)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    functions = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*\(", stripped))
    return names - functions - _NOT_NAMES


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _alert_rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


@pytest.fixture
def exposed(client, db, settings) -> set[str]:
    """Every series name /metrics gives (after one request, so the request metrics have
    samples)."""
    settings.CXHUB_METRICS_TOKEN = TOKEN
    client.get("/healthz")
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type in ("histogram", "gaugehistogram"):
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_the_dashboard_is_a_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(target["expr"] for target in panel["targets"])
    [variable] = dashboard["templating"]["list"]
    assert variable["name"] == "datasource" and variable["query"] == "prometheus"


def test_every_alert_rule_has_what_alertmanager_routes_on():
    rules = _alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "CxhubDueTargetsUnclaimed",
        "CxhubAuditCheckpointLate",
        "CxhubAccountsNeedReconnect",
        "CxhubHigh5xxRate",
        "CxhubQueueBacklog",
    }
    for rule in rules:
        assert rule["expr"] and re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]


def test_the_dashboard_and_the_alerts_use_only_metrics_that_exist(exposed):
    used = set()
    for expr in _dashboard_exprs() + [rule["expr"] for rule in _alert_rules()]:
        used |= _metric_names(expr)
    assert used, "no metric found in the expressions"
    assert "cxhub_due_targets_oldest_age_seconds" in used  # the reader finds names
    assert used - PROMETHEUS_OWN <= exposed, f"not in /metrics: {used - PROMETHEUS_OWN - exposed}"


def test_the_metric_name_reader_finds_names_not_functions_or_labels():
    assert _metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{status=~"5.."}[5m]))) > 300'
    ) == {"x_bucket"}
    assert _metric_names("a_seconds > b_seconds") == {"a_seconds", "b_seconds"}


# `make test` puts it in the venv (make obs-deps), beside the interpreter running the tests.
_PROMTOOL = shutil.which(
    "promtool", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
)
needs_promtool = pytest.mark.skipif(
    not _PROMTOOL, reason="promtool not installed (`make obs-deps` puts it in the venv)"
)


@needs_promtool
def test_promtool_accepts_the_rules():
    result = subprocess.run(
        [_PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_exposition(client, db, settings):
    settings.CXHUB_METRICS_TOKEN = TOKEN
    client.get("/healthz")
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content
    result = subprocess.run(
        [_PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
