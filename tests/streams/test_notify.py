"""driftline notify against real servers: Tansu, Alertmanager (Debian's) and a webhook receiver that goes down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaProducer

from scripts.harness import wait_for
from streams.alert_payloads import alertmanager_alert, parse_time, slack_body
from streams.embedded import free_port
from streams.embedded_ops import EmbeddedAlertmanager
from streams.keys import RedisKeys
from streams.launch import WorkerProcess
from streams.topics import ensure_topics
from tests.http_receiver import Receiver


def alert(
    alert_id: str, status: str, model: str = "churn", feature: str | None = "age", segment: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "model_id": model,
        "model_version": "v1",
        "kind": "data_drift",
        "status": status,
        "severity": "critical",
        "feature": feature,
        "segment": segment,
        "detector": "cusum",
        "statistic": 9.5,
        "threshold": 5.0,
        "n": 120,
        "window_start": "2026-11-26T18:50:14.720Z",
        "window_end": "2026-11-26T18:50:15.870Z",
        "message": f"{feature} moved",
        "detected_at": "2026-11-26T18:50:16.170Z" if status == "firing" else "2026-11-26T19:10:00.000Z",
    }


def test_alertmanager_labels_and_times_follow_the_episode() -> None:
    segment = {"region": "eu", "channel": "web"}
    firing = alertmanager_alert(alert("a1", "firing", segment=segment), None, now=1796150000.0, hold_s=240.0)
    assert firing["labels"] == {
        "alertname": "driftline_data_drift",
        "model_id": "churn",
        "kind": "data_drift",
        "feature": "age",
        "segment": '{"channel":"web","region":"eu"}',
        "severity": "critical",
        "alert_id": "a1",
    }
    assert firing["startsAt"] == "2026-11-26T18:50:16.170Z" and firing["endsAt"] > firing["startsAt"]
    fired_at = parse_time("2026-11-26T18:50:16.170Z")
    resolved = alertmanager_alert(alert("a1", "resolved", feature=None), fired_at, 1796150000.0, 240)
    assert "feature" not in resolved["labels"] and "segment" not in resolved["labels"]
    assert (resolved["startsAt"], resolved["endsAt"]) == ("2026-11-26T18:50:16.170Z", "2026-11-26T19:10:00.000Z")
    body = slack_body(alert("a1", "firing"))
    assert set(body) == {"text", "blocks", "driftline"} and body["driftline"]["alert_id"] == "a1"
    assert all(block["type"] in ("section", "context") for block in body["blocks"])


def _am_alerts(am: EmbeddedAlertmanager) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts") as response:
        return {a["labels"]["alert_id"]: a for a in json.loads(response.read())}


def _delivered(receiver: Receiver) -> set[tuple[str, str]]:
    return {(b["driftline"]["alert_id"], b["driftline"]["status"]) for b in receiver.bodies()}


def _notify(env: dict[str, str], log: Path) -> WorkerProcess:
    return WorkerProcess(env, log, command="notify").start()


def test_nothing_is_lost_while_the_webhook_is_down_and_alertmanager_keeps_receiving(
    driftline_env: dict[str, str],
    tmp_path: Path,
) -> None:
    receiver = Receiver(free_port()).start()
    with EmbeddedAlertmanager(log_path=tmp_path / "alertmanager.log") as am:
        env = {
            **driftline_env,
            "DRIFTLINE_ALERTMANAGER_URL": am.url,
            "DRIFTLINE_WEBHOOK_URLS": receiver.url,
            "DRIFTLINE_NOTIFY_MAX_BACKOFF_S": "1",
        }
        settings = WorkerProcess(env).settings()
        ensure_topics(settings)
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)

        def publish(alerts: list[dict[str, Any]]) -> None:
            for a in alerts:
                producer.send(settings.topic_alerts, key=a["model_id"].encode(), value=json.dumps(a).encode())
            producer.flush()

        first = [alert(f"a{i}", "firing", model=f"m{i % 3}") for i in range(10)]
        first += [alert(f"a{i}", "resolved", model=f"m{i % 3}") for i in range(5)]
        broken = {"alert_id": "broken", "model_id": "m1", "status": "firing"}  # no kind, no times: refused
        publish(first[:7] + [broken] + first[7:])
        notify = _notify(env, tmp_path / "notify.log")
        try:
            wait_for(
                lambda: _delivered(receiver) >= {(a["alert_id"], a["status"]) for a in first} or None,
                60,
                "the webhook gets the first alerts",
            )
            wait_for(
                lambda: set(_am_alerts(am)) == {f"a{i}" for i in range(5, 10)} or None,
                30,
                "alertmanager holds the five still firing",
            )

            rejected = redis.Redis.from_url(settings.redis_url, decode_responses=True).xrange(
                RedisKeys(settings.redis_prefix).notify_rejected
            )
            assert sorted(
                json.loads(f["alert"])["alert_id"] + " " + f["target"].split("-")[0] for _, f in rejected
            ) == ["broken alertmanager", "broken webhook"]

            receiver.stop()
            second = [alert(f"b{i}", "firing", model="m1") for i in range(8)]
            publish(second)
            wait_for(
                lambda: {f"b{i}" for i in range(8)} <= set(_am_alerts(am)) or None,
                30,
                "alertmanager keeps receiving while the webhook is down",
            )
            client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
            keys = RedisKeys(settings.redis_prefix)

            def webhook_reported_down() -> dict[str, Any] | None:
                state = {k: json.loads(v) for k, v in client.hgetall(keys.notify_status).items()}
                hook = next((v for k, v in state.items() if k.startswith("webhook-")), None)
                return hook if hook and hook["failing_since"] and hook["pending"] == len(second) else None

            down = wait_for(webhook_reported_down, 30, "the webhook reported down with its backlog")
            assert "ClientConnectorError" in down["last_error"] or "Connect" in down["last_error"]
            status = subprocess.run(
                [sys.executable, "-m", "streams", "status"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert f"DOWN, delivered {len(first)}, {len(second)} waiting, 1 rejected" in status

            notify.kill()  # SIGKILL: the undelivered were never committed ...
            receiver.start()
            notify = _notify(env, tmp_path / "notify.log")  # ... so a new notify delivers them
            expected = {(a["alert_id"], a["status"]) for a in first + second}
            wait_for(lambda: _delivered(receiver) == expected or None, 60, "every alert reaches the webhook")
        finally:
            notify.stop()
            receiver.stop()
    order = [(b["driftline"]["alert_id"], b["driftline"]["status"]) for b in receiver.bodies()]
    for i in range(5):  # per alert, firing before resolved
        assert order.index((f"a{i}", "firing")) < order.index((f"a{i}", "resolved"))
