"""The monitoring around the compose stack: Prometheus, Alertmanager and Grafana, checked with real tools.

promtool and amtool (Debian's prometheus packages) check the configurations; a
real Prometheus parses every dashboard query; and every query names metrics a
worker exports (streams.metrics.METRIC_NAMES, which a test pins to /metrics).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from streams.embedded_ops import EmbeddedPrometheus, prometheus_binary
from streams.metrics import METRIC_NAMES
from tests.test_compose import ROOT, environment, services

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "driftline.json"
METRIC = re.compile(r"\bdriftline_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel.get("targets", [])]


def family(name: str) -> str:
    """A sample name's metric family: histogram series without their suffix."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in METRIC_NAMES:
            return name[: -len(suffix)]
    return name


def mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def test_every_dashboard_query_names_metrics_the_worker_exports() -> None:
    queries = dashboard_queries()
    assert queries
    named = {family(m) for q in queries for m in METRIC.findall(q)}
    assert named <= METRIC_NAMES, sorted(named - METRIC_NAMES)
    assert all(METRIC.search(q) for q in queries), "a query names no driftline metric"
    # what the issue asks the dashboard to show: status, accuracy and its estimate, drift, alerts, lag, throughput
    assert {
        "driftline_model_status",
        "driftline_model_metric",
        "driftline_feature_drift_score",
        "driftline_alerts_open",
        "driftline_consumer_lag",
        "driftline_predictions_total",
    } <= named
    assert any('metric="estimated_accuracy"' in q for q in queries) and any('metric="accuracy"' in q for q in queries)


def test_every_dashboard_query_is_promql_a_real_prometheus_accepts(tmp_path: Path) -> None:
    with EmbeddedPrometheus([], log_path=tmp_path / "prometheus.log") as prometheus:
        for query in dashboard_queries():
            expr = query.replace("$model", ".*").replace("$__rate_interval", "1m")
            with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?query={urllib.parse.quote(expr)}") as r:
                assert json.loads(r.read())["status"] == "success", query


def test_prometheus_scrapes_every_worker_on_its_web_port() -> None:
    svcs = services()
    prometheus = svcs["prometheus"]
    config_dir = mounts(prometheus)["/etc/prometheus"]
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    port = int(environment(svcs["worker"])["DRIFTLINE_WEB_PORT"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    dns = jobs["driftline"]["dns_sd_configs"][0]
    assert dns["names"] == ["worker"] and dns["type"] == "A" and dns["port"] == port
    assert jobs["driftline"].get("metrics_path", "/metrics") == "/metrics"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    rules = [str(r) for r in config.get("rule_files", [])]
    named = {family(m) for r in rules for m in METRIC.findall((config_dir / r).read_text())}
    assert named <= METRIC_NAMES
    promtool = prometheus_binary().with_name("promtool")
    checked = subprocess.run(
        [str(promtool), "check", "config", str(config_dir / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alertmanager_configuration_is_valid_and_notify_points_at_it() -> None:
    svcs = services()
    config_dir = mounts(svcs["alertmanager"])["/etc/alertmanager"]
    amtool = prometheus_binary().with_name("amtool")
    if not amtool.exists():
        pytest.fail("amtool missing: scripts/dev.sh installs prometheus-alertmanager, which ships it")
    checked = subprocess.run(
        [str(amtool), "check-config", str(config_dir / "alertmanager.yml")], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    notify = svcs["notify"]
    assert notify["command"] == ["notify"] and notify["image"] == svcs["worker"]["image"]
    url = urllib.parse.urlsplit(environment(notify)["DRIFTLINE_ALERTMANAGER_URL"])
    assert (url.hostname, url.port) == ("alertmanager", 9093)
    assert "9093:9093" in svcs["alertmanager"]["ports"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = services()["grafana"]
    found = mounts(grafana)
    provisioning = found["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "driftline.yml").read_text())["providers"][0]
    assert found[provider["options"]["path"]] == DASHBOARD.parent
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}
    assert dashboard["uid"] == "driftline" and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_worker_healthcheck_asks_its_web_port() -> None:
    worker = services()["worker"]
    port = environment(worker)["DRIFTLINE_WEB_PORT"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
