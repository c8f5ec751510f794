"""The Redis writer and `driftline status`, against the real Redis of the session."""

from __future__ import annotations

import asyncio
import json
import random

import redis
import redis.asyncio

from detectors import Alert, Evidence
from streams.embedded import EmbeddedRedis
from streams.keys import RedisKeys
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from streams.status import render_status
from tests.streams.feeding import feed, outcome, prediction


def _state(model: str, n: int) -> ModelState:
    settings = Settings(model_probation_events=1)
    state = ModelState.create(model, settings)
    rng = random.Random(1)
    events = [
        e
        for i in range(n)
        for e in (
            prediction(str(i), 100.0 + i, features={"x": rng.random()}, model_id=model, version="v2", score=0.5),
            outcome(str(i), 100.0 + i, label=i % 4 != 0, model_id=model),
        )
    ]
    feed(state, events, settings)
    return state


def test_one_pipeline_writes_contract_keys(redis_server: EmbeddedRedis, redis_client: redis.Redis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    states = [_state("fraud", 40), _state("churn", 10)]
    evidence = Evidence("data_drift", "x", "adwin", 0.8, 0.25, 90, 100.0, 140.0, "warning", "x moved")
    firing = Alert("a1", "fraud", "v2", "firing", evidence, 141.0)

    async def write(alerts: list[Alert]) -> int:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        commands = await RedisStateWriter(client, keys, stream_maxlen=100).write(states, alerts, now=150.0)
        await client.aclose()
        return commands

    assert asyncio.run(write([firing])) == 2 + 2 + 1 + 2  # model and features hashes each, the set, the alert
    model = redis_client.hgetall(keys.model("fraud"))
    assert model["predictions"] == "40" and model["joined"] == "40" and model["metric"] == "accuracy"
    assert float(model["accuracy"]) == 0.75 and model["updated_at"].endswith("Z")
    assert redis_client.smembers(keys.models) == {"fraud", "churn"}
    assert json.loads(redis_client.hget(keys.features("fraud"), "x"))["n"] == 40
    assert json.loads(redis_client.hget(keys.open_alerts("fraud"), "a1"))["status"] == "firing"

    resolved = Alert("a1", "fraud", "v2", "resolved", evidence, 160.0)
    asyncio.run(write([resolved]))
    assert redis_client.hlen(keys.open_alerts("fraud")) == 0
    stream = [json.loads(fields["alert"])["status"] for _, fields in redis_client.xrange(keys.alerts_stream)]
    assert stream == ["firing", "resolved"]

    table = render_status(redis.Redis.from_url(redis_server.url), keys)
    assert table.splitlines()[0].split()[:4] == ["model", "predictions", "outcomes", "joined"]
    assert any(line.split()[:2] == ["fraud", "40"] and "accuracy 0.750" in line for line in table.splitlines())
    one = render_status(redis.Redis.from_url(redis_server.url), keys, "fraud")
    assert "open alerts:" in one and "none" in one


def test_a_model_whose_detectors_did_not_run_writes_only_its_hash(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, unique: str
) -> None:
    keys = RedisKeys(f"t{unique}:")
    settings = Settings(model_probation_events=1)
    state = _state("fraud", 40)

    async def write() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        await RedisStateWriter(client, keys, stream_maxlen=100).write([state], [], now=150.0)
        await client.aclose()

    asyncio.run(write())
    assert json.loads(redis_client.hget(keys.features("fraud"), "x"))["n"] == 40
    redis_client.delete(keys.features("fraud"))
    state.arrive(prediction("late", 200.0, features={"x": 0.5}, model_id="fraud"))  # counted, not yet decided on
    asyncio.run(write())
    assert redis_client.hget(keys.model("fraud"), "predictions") == "41"
    assert not redis_client.exists(keys.features("fraud"))  # its features are as last written
    state.release(final=True, settings=settings)
    asyncio.run(write())
    assert json.loads(redis_client.hget(keys.features("fraud"), "x"))["n"] == 41
