"""Operations end to end: two workers scraped by Prometheus, a drift through notify to Alertmanager and a webhook.

One run: worker A alone, then worker B joins (a rebalance), traffic before and
after; a model's feature shifts (a data-drift alert fires) and comes back (it
resolves). Then PromQL over Prometheus' HTTP API gives Redis' exact counts,
Alertmanager held the alert firing and notified its resolve, the webhook got
both, the API of either worker answers for any model, and a SIGKILLed worker
leaves `driftline status --json` and `/ready`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaProducer

from scripts.harness import model_counts, wait_for
from streams.api import openapi_document
from streams.embedded import free_port
from streams.embedded_ops import EmbeddedAlertmanager, EmbeddedPrometheus
from streams.keys import RedisKeys
from streams.launch import WorkerProcess
from tests.http_receiver import Receiver
from tests.streams.openapi_check import check

STEADY = [f"steady-{n}" for n in range(4)]
DRIFTING = "drifting"
EVENTS, DRIFT_FROM, DRIFT_TO, DRIFT_EVENTS = 1000, 1500, 1700, 3500
T0 = 1_700_000_000


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def promql(prometheus: EmbeddedPrometheus, query: str) -> list[dict[str, Any]]:
    status, body = get(f"{prometheus.url}/api/v1/query?query={urllib.parse.quote(query)}")
    assert status == 200 and body["status"] == "success", body
    return body["data"]["result"]


def by_model(result: list[dict[str, Any]]) -> dict[str, int]:
    return {r["metric"]["model"]: int(float(r["value"][1])) for r in result}


def steady(model: str, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(f"{model}-{start}")
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(start, stop):
        x = rng.gauss(0, 1)
        out.append(
            (
                "p",
                {
                    "model_id": model,
                    "prediction_id": str(i),
                    "features": {"x": x, "y": rng.random()},
                    "prediction": int(x > 0),
                    "score": 0.8,
                    "timestamp": T0 + i,
                },
            )
        )
        out.append(("o", {"model_id": model, "prediction_id": str(i), "label": int(x > 0.1), "timestamp": T0 + i}))
    return out


def drifting(start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(start)
    return [
        (
            "p",
            {
                "model_id": DRIFTING,
                "prediction_id": str(i),
                "features": {"x": rng.gauss(3.0 if DRIFT_FROM <= i < DRIFT_TO else 0.0, 1), "y": rng.random()},
                "prediction": 1,
                "timestamp": T0 + i,
            },
        )
        for i in range(start, stop)
    ]


@pytest.fixture
def stack(driftline_env: dict[str, str], tmp_path: Path):
    receiver = Receiver(free_port()).start()
    ports = [free_port(), free_port()]
    with (
        EmbeddedAlertmanager(
            f"http://127.0.0.1:{receiver.port}/alertmanager", log_path=tmp_path / "alertmanager.log"
        ) as am,
        EmbeddedPrometheus(
            [f"127.0.0.1:{p}" for p in ports], scrape_interval_s=1.0, log_path=tmp_path / "prometheus.log"
        ) as prometheus,
    ):
        env = {
            **driftline_env,
            "DRIFTLINE_ALERTMANAGER_URL": am.url,
            "DRIFTLINE_WEBHOOK_URLS": receiver.url,
            "DRIFTLINE_MAX_DISORDER_S": "0",
            "DRIFTLINE_WATERMARK_IDLE_S": "0.5",
        }
        workers = [
            WorkerProcess({**env, "DRIFTLINE_WEB_PORT": str(p)}, tmp_path / f"worker-{n}.log")
            for n, p in enumerate(ports)
        ]
        notify = WorkerProcess(env, tmp_path / "notify.log", command="notify")
        try:
            yield env, workers, ports, notify, receiver, am, prometheus
        finally:
            for process in (*workers, notify):
                process.stop()
            receiver.stop()


def test_prometheus_alertmanager_webhook_api_and_registry(stack) -> None:
    env, workers, ports, notify, receiver, am, prometheus = stack
    producer = KafkaProducer(bootstrap_servers=env["DRIFTLINE_KAFKA_BOOTSTRAP"], linger_ms=5)
    topics = {"p": env["DRIFTLINE_TOPIC_PREDICTIONS"], "o": env["DRIFTLINE_TOPIC_OUTCOMES"]}
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    keys = RedisKeys(env["DRIFTLINE_REDIS_PREFIX"])

    def send(events: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, event in events:
            producer.send(topics[kind], key=event["model_id"].encode(), value=json.dumps(event).encode())
        producer.flush()

    workers[0].start().ready()
    notify.start()
    send([e for m in STEADY for e in steady(m, 0, EVENTS // 2)] + drifting(0, DRIFT_TO + 100))
    fired = wait_for(lambda: _am_drift_alert(am), 60, "the drift firing in Alertmanager")
    assert fired["status"]["state"] == "active" and fired["labels"]["severity"] in ("warning", "critical")
    alert_id = fired["labels"]["alert_id"]
    send(drifting(DRIFT_TO + 100, DRIFT_EVENTS))
    resolved = wait_for(lambda: _am_notified(receiver, alert_id, "resolved"), 60, "Alertmanager notifying the resolve")
    assert resolved["labels"]["model_id"] == DRIFTING and resolved["labels"]["feature"] == "x"
    assert alert_id not in {a["labels"].get("alert_id") for a in get(f"{am.url}/api/v2/alerts")[1]}
    wait_for(lambda: _hook_statuses(receiver, alert_id) == {"firing", "resolved"} or None, 30, "the webhook")
    half = {m: (EVENTS // 2,) * 3 for m in STEADY} | {DRIFTING: (DRIFT_EVENTS, 0, 0)}
    wait_for(lambda: model_counts(client, keys, half) == half or None, 60, "exact counts before the rebalance")

    workers[1].start().ready()  # a rebalance: partitions move to the new worker, with their models
    wait_for(lambda: _owners(client, keys) == 2 or None, 60, "both workers owning partitions")
    send([e for m in STEADY for e in steady(m, EVENTS // 2, EVENTS)] + drifting(DRIFT_EVENTS, DRIFT_EVENTS + 100))
    previous: list[Any] = [None]

    def settled() -> dict[str, tuple[int, ...]] | None:
        """Redis counts unchanged since the last look, and PromQL over both workers giving exactly them."""
        now = model_counts(client, keys, half)
        moved, previous[0] = now != previous[0], now
        if moved:
            return None
        prom = [
            by_model(promql(prometheus, f"sum by (model) (driftline_{name}_total)"))
            for name in ("predictions", "outcomes", "joined")
        ]
        return now if all(prom[n] == {m: c[n] for m, c in now.items()} for n in range(3)) else None

    counts = wait_for(settled, 90, "PromQL sums equal to the Redis counts after the rebalance", every_s=1.0)
    assert set(counts) == {*STEADY, DRIFTING}
    reporters = by_model(promql(prometheus, "count by (model) (driftline_predictions_total)"))
    assert reporters == {m: 1 for m in counts}  # each model reported by exactly one worker, its owner now
    assert len(promql(prometheus, "driftline_partitions_owned > 0")) == 2

    _check_api(ports, counts)
    workers[0].kill()  # SIGKILL: no goodbye in the registry
    survivor = workers[1].pid
    wait_for(
        lambda: [w["pid"] for w in _status_json(env)["workers"]] == [survivor] or None,
        30,
        "the dead worker out of status --json",
    )
    every = list(range(int(env["DRIFTLINE_PARTITIONS"])))
    ready = wait_for(  # the dead worker leaves the registry before the group hands its partitions over
        lambda: (
            (r := get(f"http://127.0.0.1:{ports[1]}/ready"))[0] == 200
            and r[1]["live_workers"] == 1
            and r[1]["partitions"] == every
            and r[1]
            or None
        ),
        60,
        "the survivor ready alone, owning every partition",
    )
    check("/ready", ready)
    assert ready["partitions"] == every


def _am_drift_alert(am: EmbeddedAlertmanager) -> dict[str, Any] | None:
    return next(
        (
            a
            for a in get(f"{am.url}/api/v2/alerts")[1]
            if a["labels"].get("model_id") == DRIFTING and a["labels"].get("kind") == "data_drift"
        ),
        None,
    )


def _am_notified(receiver: Receiver, alert_id: str, status: str) -> dict[str, Any] | None:
    return next(
        (
            a
            for body in receiver.bodies("/alertmanager")
            for a in body["alerts"]
            if a["labels"].get("alert_id") == alert_id and a["status"] == status
        ),
        None,
    )


def _hook_statuses(receiver: Receiver, alert_id: str) -> set[str]:
    return {b["driftline"]["status"] for b in receiver.bodies("/hook") if b["driftline"]["alert_id"] == alert_id}


def _owners(client: redis.Redis, keys: RedisKeys) -> int:
    return sum(1 for raw in client.hvals(keys.workers) if json.loads(raw)["partitions"])


def _status_json(env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-m", "streams", "status", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(run.stdout)


def _check_api(ports: list[int], counts: dict[str, tuple[int, ...]]) -> None:
    """Each worker answers for every model, from Redis; answers fit the OpenAPI description."""
    for port in ports:
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/healthz") == (200, {"alive": True})
        assert get(f"{base}/api/openapi.json") == (200, openapi_document())
        status, models = get(f"{base}/api/models")
        check("/api/models", models)
        assert {m["model_id"] for m in models["models"]} == {*STEADY, DRIFTING}
        status, detail = get(f"{base}/api/models/{DRIFTING}")
        check("/api/models/{model_id}", detail)
        assert detail["model"]["predictions"] == counts[DRIFTING][0] and "x" in detail["features"]
        status, recent = get(f"{base}/api/alerts/recent?model={DRIFTING}")
        check("/api/alerts/recent", recent)
        assert {e["alert"]["status"] for e in recent["alerts"] if e["alert"]["feature"] == "x"} >= {
            "firing",
            "resolved",
        }
        check("/api/alerts/open", get(f"{base}/api/alerts/open")[1])
        assert get(f"{base}/api/models/nobody")[0] == 404
        with urllib.request.urlopen(f"{base}/metrics") as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            assert b"driftline_predictions_total{" in response.read()
