"""The dashboard, served by a real worker during a drift scenario, in a real headless browser.

One worker with its web port; five models' events through the session broker,
``credit-risk``'s ``income`` shifting half-way through its event time (two
hours of it, two seconds between events). Chromium loads the overview and the
model page: the drifted model is listed first, the drifted feature ranked
first, the charts have data, and every request went to the worker.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaProducer

from scripts.harness import wait_for, wait_for_counts
from scripts.harness.browser import browser, shown
from streams.embedded import free_port
from streams.keys import RedisKeys
from streams.launch import WorkerProcess

DRIFTING, STEADY = "credit-risk", [f"steady-{n}" for n in range(4)]
EVENTS, DRIFT_AT, STEP_S, T0 = 3600, 1800, 2.0, 1_700_000_000.0


def events(model_id: str, n: int, drift_at: int | None) -> list[tuple[str, dict[str, Any]]]:
    """Predictions and outcomes; ``income`` up by 2 std from ``drift_at`` on."""
    rng = random.Random(model_id)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        shift = 20.0 if drift_at is not None and i >= drift_at else 0.0
        income = rng.gauss(50.0 + shift, 10.0)
        ts = T0 + i * STEP_S
        features = {"income": income, "age": rng.gauss(40.0, 5.0), "plan": rng.choice(["basic", "basic", "pro"])}
        predicted = int(income > 50)
        out.append(
            (
                "p",
                {
                    "model_id": model_id,
                    "prediction_id": str(i),
                    "features": features,
                    "prediction": predicted,
                    "score": 0.8,
                    "timestamp": ts,
                },
            )
        )
        label = predicted if rng.random() < 0.85 else 1 - predicted
        out.append(("o", {"model_id": model_id, "prediction_id": str(i), "label": label, "timestamp": ts}))
    return out


def produce(env: dict[str, str], stream: list[tuple[str, dict[str, Any]]], batch: int = 100) -> None:
    """Send the events in batches (JSON arrays) as a service would: each batch's predictions, then their outcomes."""
    producer = KafkaProducer(bootstrap_servers=env["DRIFTLINE_KAFKA_BOOTSTRAP"], linger_ms=5)
    topics = {"p": env["DRIFTLINE_TOPIC_PREDICTIONS"], "o": env["DRIFTLINE_TOPIC_OUTCOMES"]}
    for begin in range(0, len(stream), 2 * batch):
        part = stream[begin : begin + 2 * batch]
        for kind, topic in topics.items():
            chosen = [e for k, e in part if k == kind]
            producer.send(topic, key=chosen[0]["model_id"].encode(), value=json.dumps(chosen).encode())
    producer.flush()
    producer.close()


@pytest.fixture
def worker(driftline_env: dict[str, str], tmp_path: Path) -> Any:
    port = free_port()
    env = {**driftline_env, "DRIFTLINE_WEB_PORT": str(port), "DRIFTLINE_WATERMARK_IDLE_S": "0.5"}
    process = WorkerProcess(env, tmp_path / "worker.log").start().ready()
    try:
        yield env, port
    finally:
        process.stop()


def test_the_dashboard_shows_the_drift_and_asks_only_the_worker(worker: Any, tmp_path: Path) -> None:
    env, port = worker
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    keys = RedisKeys(env["DRIFTLINE_REDIS_PREFIX"])
    stream = events(DRIFTING, EVENTS, DRIFT_AT) + [e for m in STEADY for e in events(m, EVENTS // 4, None)]
    produce(env, stream)
    want = {DRIFTING: {"predictions": EVENTS, "joined": EVENTS}} | {m: {"predictions": EVENTS // 4} for m in STEADY}
    wait_for_counts(client, keys, want, 120)

    def drift_open() -> bool | None:
        alerts = [json.loads(a) for a in client.hvals(keys.open_alerts(DRIFTING))]
        return True if any(a["kind"] == "data_drift" and a["feature"] == "income" for a in alerts) else None

    wait_for(drift_open, 60, "the income drift alert")
    base = f"http://127.0.0.1:{port}"

    async def look() -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        async with browser(tmp_path / "chromium.log") as page:
            await page.goto(f"{base}/dashboard#/")
            await page.until("document.body.dataset.view === 'overview' && document.body.dataset.ready === '1'")
            overview = await shown(page)
            await page.screenshot(tmp_path / "overview.png")
            await page.evaluate(f"location.hash = '#/model/{DRIFTING}'")
            await page.until("document.body.dataset.view === 'model' && document.body.dataset.ready === '1'")
            await page.until("document.querySelectorAll('#alert-list li[data-alert]').length > 0")
            model = await shown(page)
            await page.screenshot(tmp_path / "model.png")
            return overview, model, page.requests

    overview, model, requests = asyncio.run(asyncio.wait_for(look(), 120))
    print(f"screenshots: {tmp_path / 'overview.png'} {tmp_path / 'model.png'}; shown: {overview} {model}")
    assert overview["models"][0] == DRIFTING and set(overview["models"]) == {DRIFTING, *STEADY}
    # A point a minute of event time, with the metric once labels join: how many of a steady model's 30 points
    # have one depends on how far its outcomes lagged its predictions in the fetches (late ones join at the frontier).
    assert overview["sparklines"][0] >= 30 and min(overview["sparklines"]) >= 2
    assert model["features"][0] == "income" and model["selected"] == "income"
    charts = model["charts"]
    assert charts["metric"]["points"] >= 30 and charts["metric"]["markers"] >= 1  # 120 intervals of event time
    assert charts["distribution"]["points"] == 500 and charts["feature-score"]["points"] >= 30
    assert model["alerts"] >= 1 and model["evidence"] >= 1
    outside = [url for url in requests if not url.startswith(base + "/")]
    assert not outside, outside
    assert any(url.startswith(f"{base}/api/alerts/stream") for url in requests)  # the live alert list
    with urllib.request.urlopen(f"{base}/dashboard/", timeout=10) as response:  # redirected to the page
        assert b"/dashboard/dashboard.js" in response.read()
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{base}/dashboard/secrets.txt", timeout=10)
