"""Every Grafana panel's PromQL names metrics the services really export: the metric names are taken out of
each expression and looked up in the real /metrics output of the four running services (issue #14)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.localstack import SERVICES, Stack
from tests.dashboard.conftest import DashWorld

pytestmark = pytest.mark.e2e

BOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
               "unless", "inf", "nan"}
# Every subject the issue asks a board for, by the metric that shows it.
REQUIRED = {"http_requests_total", "http_request_seconds_bucket", "outbox_published_total", "events_applied_total",
            "events_duplicates_skipped_total", "events_dead_lettered_total", "consumer_lag", "outbox_backlog",
            "roster_rows_imported_total", "claims_by_status"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, aggregations, labels or keywords)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        before = expr[m.start() - 1] if m.start() else ""
        if before.isdigit() or before == "." or m.group(0).lower() in NOT_METRICS:
            continue
        if expr[m.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(m.group(0))
    return names


def test_metric_names_of_an_expression() -> None:
    expr = ('histogram_quantile(0.95, sum by (job, le) (rate(http_request_seconds_bucket{job=~"$job",'
            'route!="/x"}[$__rate_interval]))) / on (job) group_left max without (topic) (outbox_backlog) > 1e3')
    assert metric_names(expr) == {"http_request_seconds_bucket", "outbox_backlog"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def exported(stack: Stack) -> set[str]:
    names: set[str] = set()
    for service in SERVICES:
        text = httpx.get(f"{stack.url(service)}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
    return names


def test_every_panel_reads_metrics_the_services_export(dash_stack: Stack, dash_world: DashWorld) -> None:
    real = exported(dash_stack)
    used: set[str] = set()
    missing = []
    boards = sorted(BOARDS.glob("*.json"))
    assert boards
    for path in boards:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                names = metric_names(target["expr"])
                assert names, f"{path.name} / {panel['title']}: no metric in {target['expr']!r}"
                used |= names
                missing += [(path.name, panel["title"], n) for n in sorted(names - real)]
    assert not missing, f"panels reading metrics no service exports: {missing}"
    assert REQUIRED <= used, f"no panel shows {sorted(REQUIRED - used)}"


def test_the_world_shows_in_the_business_gauges(dash_stack: Stack, dash_world: DashWorld) -> None:
    claims = httpx.get(f"{dash_stack.url('claims')}/metrics", timeout=10).text
    assert re.search(r'^claims_by_status\{status="paid"\} [1-9]', claims, re.M), claims
    assert re.search(r'^consumer_lag\{topic="payments.events"\} \d', claims, re.M)
    enrollment = httpx.get(f"{dash_stack.url('enrollment')}/metrics", timeout=10).text
    rows = re.search(r"^roster_rows_imported_total ([0-9.e+]+)$", enrollment, re.M)
    assert rows and float(rows.group(1)) >= 20  # 5 rows last period, 15 this one
