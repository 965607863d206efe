"""docker-compose.yml's ops dashboard, its nginx route and Grafana's provisioning (issue #14), checked against
services/dashboard/settings.py and deploy/grafana/ (no Docker engine here: nothing is started)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from services.dashboard.settings import UPSTREAMS, DashboardSettings
from shared.settings import SETTINGS_BY_SERVICE, InsecureSettings
from tests.unit.test_compose import INTERPOLATION, ROOT, _environment, _resolved_env, _service

GRAFANA = ROOT / "deploy" / "grafana"


def test_dashboard_service_reaches_the_four_services_with_the_shared_secret() -> None:
    env = _environment("dashboard")
    assert env["HUZHU_SERVICE"] == "dashboard" and env["HUZHU_PORT"] == "8000"
    assert _service("dashboard")["ports"] == ["8000:8000"]
    unknown = [k for k in env if k.startswith("DASHBOARD_")
               and k[len("DASHBOARD_"):].lower() not in DashboardSettings.model_fields]
    assert not unknown, f"variables naming no DashboardSettings field: {unknown}"
    for name in UPSTREAMS:
        assert env[f"DASHBOARD_{name.upper()}_URL"] == f"http://{name}:{SETTINGS_BY_SERVICE[name].default_port}"
    secret = INTERPOLATION.fullmatch(env["DASHBOARD_JWT_SECRET"])
    assert secret and secret.group("name") == "HUZHU_JWT_SECRET" and (secret.group("op") or "").endswith("?")
    assert env["DASHBOARD_LOCAL_STACK"] == "false" and env["DASHBOARD_HOST"] == "0.0.0.0"
    assert ":8000/readyz" in " ".join(_service("dashboard")["healthcheck"]["test"])
    assert set(_service("dashboard")["depends_on"]) == set(UPSTREAMS)


def test_dashboard_settings_from_compose_and_refused_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _resolved_env("dashboard").items():
        monkeypatch.setenv(key, value)
    settings = DashboardSettings()
    assert settings.port == 8000 and settings.url("claims") == "http://claims:8002"
    monkeypatch.delenv("DASHBOARD_JWT_SECRET")
    with pytest.raises(InsecureSettings):
        DashboardSettings()


def test_nginx_serves_the_dashboard_at_the_root() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    block = re.search(r"location\s+/\s*\{(?P<body>[^}]*)\}", conf)
    assert block and "http://dashboard:8000" in block.group("body")
    assert "dashboard" in _service("proxy")["depends_on"]


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_boards() -> None:
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in _service("grafana")["volumes"]}
    assert mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    boards_dir = mounts.get("./deploy/grafana/dashboards")
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "huzhu.yaml").read_text())
    assert [p["options"]["path"] for p in provider["providers"]] == [boards_dir]
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    boards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert len(boards) >= 2
    uids = []
    for path in boards:
        board = json.loads(path.read_text())
        uids.append(board["uid"])
        for panel in board["panels"]:
            assert panel["title"] and panel["targets"], f"{path.name}: panel {panel.get('id')} is empty"
            assert panel["datasource"]["uid"] == source["uid"], f"{path.name}: {panel['title']}"
    assert len(set(uids)) == len(uids)


def test_dockerfile_builds_the_dashboards_charting_library_from_the_lock_file() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "npm ci" in text and "package-lock.json" in text
    lock = json.loads((ROOT / "services" / "dashboard" / "package-lock.json").read_text())
    pinned = json.loads((ROOT / "services" / "dashboard" / "package.json").read_text())["dependencies"]["chart.js"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "chart.js must be pinned to one version"
    assert lock["packages"]["node_modules/chart.js"]["version"] == pinned
    assert Path(ROOT / ".dockerignore").read_text().count("node_modules") == 1
