"""The read-only JSON API, from Redis: answers fit the shipped OpenAPI description; the alert stream resumes."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import jsonschema
import orjson
import pytest
import redis.asyncio
from aiohttp import web

from detectors import Alert, Evidence
from streams.api import ModelPage, ReadApi
from streams.embedded import EmbeddedRedis, free_port
from streams.history import HistoryPolicy, HistoryRecorder
from streams.history_read import HistoryQuery
from streams.keys import RedisKeys
from streams.redis_state import RedisStateWriter
from streams.registry import WorkerRegistry
from streams.settings import Settings
from streams.state import ModelState
from streams.web import stream_alerts
from tests.streams.feeding import feed, outcome, prediction
from tests.streams.openapi_check import check, check_component

SETTINGS = Settings(model_probation_events=1, max_disorder_s=0.0, segment_selection_events=200, segment_min_events=50)
EVIDENCE = Evidence("data_drift", "x", "cusum", 9.0, 5.0, 120, 100.0, 140.0, "critical", "x moved")


def _state(model: str, n: int) -> ModelState:
    state = ModelState.create(model, SETTINGS)
    rng = random.Random(2)
    events = [
        e
        for i in range(n)
        for e in (
            prediction(
                str(i),
                100.0 + i,
                int(i % 3 == 0),
                {"x": rng.random(), "plan": rng.choice("ab")},
                model_id=model,
                score=0.6,
                segment={"region": "eu" if i % 2 else "us"},
            ),
            outcome(str(i), 100.0 + i, label=int(i % 4 == 0), model_id=model),
        )
    ]
    feed(state, events, SETTINGS, every=50)
    return state


async def _write(url: str, keys: RedisKeys, alerts: list[Alert]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    history = HistoryRecorder(keys, HistoryPolicy(60.0, 3600.0, 10))
    await RedisStateWriter(client, keys, stream_maxlen=100, history=history).write(
        [_state("churn", 400), _state("fraud", 60)], alerts, now=500.0
    )
    registry = WorkerRegistry(client, keys, ttl_s=30)
    await registry.announce([0, 1])
    await client.aclose()


def test_every_answer_fits_the_openapi_description(redis_server: EmbeddedRedis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    firing = Alert("a1", "churn", "v1", "firing", EVIDENCE, 141.0)
    asyncio.run(_write(redis_server.url, keys, [firing]))

    async def answers() -> dict[str, object]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        api = ReadApi(client, keys)
        found = {
            "/api/models": await api.models(),
            "/api/models/{model_id}": await api.model("churn"),
            "/api/alerts/open": await api.open_alerts(),
            "/api/alerts/recent": await api.recent_alerts(10),
            "/api/workers": await api.workers(),
            "missing": await api.model("nope"),
            "fraud alerts": await api.open_alerts("fraud"),
            "/api/models/{model_id}/history": await api.history("churn", HistoryQuery()),
            "/api/history": await api.sparklines(["churn", "fraud", "nope"], 10),
            "page": await api.models(ModelPage(offset=1, limit=1, worst_first=True)),
            "no history": await api.history("nope", HistoryQuery()),
        }
        await client.aclose()
        return found

    found = asyncio.run(answers())
    paths = ["/api/models", "/api/models/{model_id}", "/api/alerts/open", "/api/alerts/recent", "/api/workers"]
    for path in [*paths, "/api/models/{model_id}/history", "/api/history"]:
        check(path, found[path])
    check("/api/models", found["page"])
    assert found["page"]["total"] == 2 and found["page"]["statuses"] == {"ok": 2}
    assert [m["model_id"] for m in found["page"]["models"]] == ["fraud"]
    history = found["/api/models/{model_id}/history"]
    assert [p["t"] for p in history["points"]] == [120.0 + 60 * i for i in range(7)]  # event times 100 to 499
    assert set(history["features"]) == {"x", "plan"}
    assert found["no history"] is None and found["/api/history"]["history"]["nope"] == []
    assert found["/api/models/{model_id}"]["distributions"] == {}  # references still building (1,000 values)
    detail = found["/api/models/{model_id}"]
    assert detail["model"]["predictions"] == 400 and detail["model"]["joined"] == 400
    assert set(detail["features"]) == {"x", "plan"}
    assert {tuple(s["segment"].items()) for s in detail["segments"]} >= {(("region", "eu"),), (("region", "us"),)}
    assert [a["alert_id"] for a in detail["open_alerts"]] == ["a1"]
    assert [m["model_id"] for m in found["/api/models"]["models"]] == ["churn", "fraud"]
    assert found["missing"] is None and found["fraud alerts"] == {"alerts": []}
    assert found["/api/alerts/recent"]["alerts"][0]["alert"]["alert_id"] == "a1"
    with pytest.raises(jsonschema.ValidationError):  # the description is strict enough to fail
        check("/api/models/{model_id}", {**detail, "model": {**detail["model"], "status": "fine"}})


def test_the_alert_stream_sends_new_alerts_and_resumes_after_the_last_event_id(
    redis_server: EmbeddedRedis,
    unique: str,
) -> None:
    keys = RedisKeys(f"t{unique}:")

    async def scenario() -> tuple[list[dict], list[dict]]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        api = ReadApi(client, keys)
        app = web.Application()

        async def handler(request: web.Request) -> web.StreamResponse:
            return await stream_alerts(api, request)

        app.router.add_get("/stream", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        writer = RedisStateWriter(client, keys, stream_maxlen=100)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/stream") as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                await response.content.readline()  # the opening comment: subscribed
                await writer.write(
                    [], [Alert(f"a{i}", "churn", "v1", "firing", EVIDENCE, 141.0 + i) for i in range(3)], now=0.0
                )
                first = await _events(response, 3)
            resumed_after = first[0]["id"]
            async with session.get(
                f"http://127.0.0.1:{port}/stream", headers={"Last-Event-ID": resumed_after}
            ) as response:
                again = await _events(response, 2)
        await runner.cleanup()
        await client.aclose()
        return first, again

    first, again = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [e["data"]["alert_id"] for e in first] == ["a0", "a1", "a2"]
    assert all(e["event"] == "alert" for e in first)
    assert [e["data"]["alert_id"] for e in again] == ["a1", "a2"]
    for event in first:
        check_component("Alert", event["data"])


async def _events(response: aiohttp.ClientResponse, count: int) -> list[dict]:
    """Read ``count`` server-sent events (comment lines skipped)."""
    events: list[dict] = []
    current: dict = {}
    while len(events) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if not line:
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = orjson.loads(value) if field == "data" else value
    return events
