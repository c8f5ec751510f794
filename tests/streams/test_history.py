"""A model's history in Redis: one point per interval of event time, capped, read back deduplicated."""

from __future__ import annotations

import asyncio
import random

import orjson
import redis
import redis.asyncio
from redis.cluster import key_slot

from streams.api import ReadApi
from streams.embedded import EmbeddedRedis
from streams.embedded_ops import EmbeddedRedisCluster
from streams.history import HistoryPolicy, HistoryRecorder
from streams.history_read import HistoryQuery, parse_distributions, parse_history, queue_distributions, queue_history
from streams.keys import RedisKeys
from streams.redis_client import async_client, connect
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from tests.streams.feeding import outcome, prediction

SETTINGS = Settings(model_probation_events=1, max_disorder_s=0.0, reference_events=500)
POLICY = HistoryPolicy(interval_s=60.0, retention_s=3600.0, max_features=10)


def drifting_events(
    n: int, drift_at: int, start: float = 1000.0, step: float = 1.0, seed: int = 3, model_id: str = "churn"
) -> list:
    """A model with a numeric feature that shifts by 2 std at ``drift_at``, a steady one and a category."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        income = rng.gauss(50.0 + (20.0 if i >= drift_at else 0.0), 10.0)
        features = {"income": income, "age": rng.gauss(40.0, 5.0), "plan": rng.choice("aab")}
        ts = start + i * step
        events += [
            prediction(str(i), ts, int(income > 55), features, model_id=model_id, score=0.7),
            outcome(str(i), ts, int(i % 3 > 0), model_id=model_id),
        ]
    return events


async def _run(url: str, keys: RedisKeys, events: list, chunk: int, policy: HistoryPolicy = POLICY) -> int:
    """Feed the state in chunks, each followed by a write (as the pipeline flushes); return the writes."""
    client = redis.asyncio.Redis.from_url(url)
    writer = RedisStateWriter(client, keys, stream_maxlen=100, history=HistoryRecorder(keys, policy))
    settings = SETTINGS.model_copy(
        update={"history_interval_s": policy.interval_s, "history_max_features": policy.max_features}
    )
    state = ModelState.create("churn", settings)
    writes = 0
    for begin in range(0, len(events), chunk):
        for event in events[begin : begin + chunk]:
            state.arrive(event)
        state.release(False, settings)
        await writer.write([state], state.alerts(now=0.0), now=0.0)
        writes += 1
    await client.aclose()
    return writes


def _read(client: redis.Redis, keys: RedisKeys, query: HistoryQuery, policy: HistoryPolicy = POLICY) -> dict:
    pipe = client.pipeline(transaction=False)
    queue_history(pipe, keys, "churn", query)
    return parse_history(pipe.execute(), "churn", query, policy)


def test_one_point_per_interval_of_event_time_with_counts_metrics_and_features(
    redis_server: EmbeddedRedis, unique: str
) -> None:
    keys = RedisKeys(f"t{unique}:")
    events = drifting_events(3000, drift_at=1500)  # 3,000 s of event time: 50 intervals
    asyncio.run(_run(redis_server.url, keys, events, chunk=70))
    client = redis.Redis.from_url(redis_server.url)
    history = _read(client, keys, HistoryQuery())
    points = history["points"]
    buckets = [int(p["t"] // 60) for p in points]
    assert buckets == sorted(set(buckets)) and len(points) >= 45  # about one a minute, never two
    assert [p["predictions"] for p in points] == sorted(p["predictions"] for p in points)
    assert points[-1]["metric"] == "accuracy" and 0.0 <= points[-1]["accuracy"] <= 1.0
    assert "estimated_accuracy" in points[-1]
    income, age = history["features"]["income"], history["features"]["age"]
    assert max(p["score"] for p in income[len(income) // 2 :]) >= 1.0  # drifted after the middle
    assert max(p["score"] for p in age) < 1.0
    assert {"psi", "ks", "wasserstein"} <= set(income[-1]) and {"chi2", "psi"} <= set(history["features"]["plan"][-1])
    assert points[-1]["status"] in ("warning", "critical") and points[0]["status"] == "ok"

    only = _read(client, keys, HistoryQuery(points=5, features=("age",)))
    assert len(only["points"]) == 5 and set(only["features"]) == {"age"}
    assert _read(client, keys, HistoryQuery(points=5, features=()))["features"] == {}


def test_distributions_show_the_reference_against_the_recent_window(redis_server: EmbeddedRedis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    asyncio.run(_run(redis_server.url, keys, drifting_events(3000, drift_at=1500), chunk=70))
    client = redis.Redis.from_url(redis_server.url)
    pipe = client.pipeline(transaction=False)
    queue_distributions(pipe, keys, "churn")
    shown = parse_distributions(pipe.execute()[0])
    income, plan = shown["income"], shown["plan"]
    assert income["type"] == "numeric" and len(income["edges"]) == len(income["reference"]) + 1
    assert abs(sum(income["reference"]) - 1) < 1e-3 and abs(sum(income["recent"]) - 1) < 1e-3
    assert income["recent_n"] == 500
    centre = [(a + b) / 2 for a, b in zip(income["edges"], income["edges"][1:], strict=False)]
    mean = {side: sum(c * s for c, s in zip(centre, income[side], strict=True)) for side in ("reference", "recent")}
    assert mean["recent"] - mean["reference"] > 12  # shifted by 20
    assert plan["type"] == "categorical" and set(plan["labels"]) == {"a", "b", "other"}


def test_points_are_capped_and_a_replayed_interval_is_read_once(redis_server: EmbeddedRedis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    small = HistoryPolicy(interval_s=10.0, retention_s=2000.0, max_features=2)  # 200 points at most
    events = drifting_events(3000, drift_at=10_000)
    asyncio.run(_run(redis_server.url, keys, events, chunk=100, policy=small))
    asyncio.run(_run(redis_server.url, keys, events[4000:], chunk=100, policy=small))  # a restart replays the end
    client = redis.Redis.from_url(redis_server.url)
    assert small.max_points <= client.xlen(keys.history("churn")) <= small.max_points + 100  # approximate trim
    history = _read(client, keys, HistoryQuery(points=small.max_points + 100), small)
    times = [p["t"] for p in history["points"]]
    assert len(set(int(t // 10) for t in times)) == len(times) and times == sorted(times)
    assert times[-1] - times[0] <= small.retention_s
    newest = client.xrevrange(keys.feature_history("churn"), count=1)[0][1][b"p"]
    assert len(orjson.loads(newest)["features"]) == 2  # the two highest scores


def test_history_memory_per_model_is_bounded(redis_server: EmbeddedRedis, unique: str) -> None:
    """At the default 10 features, a point of a 3-feature model costs a few hundred bytes in Redis."""
    keys = RedisKeys(f"t{unique}:")
    asyncio.run(_run(redis_server.url, keys, drifting_events(3000, drift_at=1500), chunk=70))
    client = redis.Redis.from_url(redis_server.url)
    points = client.xlen(keys.history("churn"))
    used = sum(client.memory_usage(k, samples=0) for k in (keys.history("churn"), keys.feature_history("churn")))
    per_point = used / points
    print(f"history: {points} points, {used} bytes, {per_point:.0f} bytes per point (3 features)")
    assert per_point < 1000


def test_points_follow_event_time_whatever_the_batches(redis_server: EmbeddedRedis, unique: str) -> None:
    """The same events written in batches of 13 and of 400 give the same points (a backlog replays like live)."""
    found = []
    for chunk in (13, 400):
        keys = RedisKeys(f"t{unique}{chunk}:")
        asyncio.run(_run(redis_server.url, keys, drifting_events(2000, drift_at=1000), chunk=chunk))
        client = redis.Redis.from_url(redis_server.url)
        history = _read(client, keys, HistoryQuery())
        decided = [{k: v for k, v in p.items() if k not in ("status", "open_alerts")} for p in history["points"]]
        found.append((decided, history["features"]))
    assert found[0] == found[1] and len(found[0][0]) >= 30


def test_history_keys_share_the_model_slot_and_work_on_a_cluster(
    redis_cluster: EmbeddedRedisCluster, unique: str
) -> None:
    keys = RedisKeys(f"t{unique}:")
    named = (keys.model, keys.history, keys.feature_history, keys.distributions)
    assert len({key_slot(name("credit-risk").encode()) for name in named}) == 1
    settings = Settings(redis_url=redis_cluster.url)

    async def run() -> tuple[dict, dict]:
        client = async_client(settings)
        await connect(client)
        writer = RedisStateWriter(client, keys, stream_maxlen=100, history=HistoryRecorder(keys, POLICY))
        states = []
        for model_id in ("a", "b", "c"):
            state = ModelState.create(model_id, SETTINGS)
            for event in drifting_events(600, drift_at=10_000, model_id=model_id):
                state.arrive(event)
            state.release(True, SETTINGS)
            states.append(state)
        await writer.write(states, [], now=0.0)
        api = ReadApi(client, keys, POLICY)
        found = (await api.history("b", HistoryQuery()), await api.sparklines(["a", "b", "c"], 5))
        await client.aclose()
        return found

    history, sparklines = asyncio.run(run())
    assert len(history["points"]) == 10 and set(history["features"]) == {"income", "age", "plan"}  # 1020 to 1560
    assert {m: len(p) for m, p in sparklines["history"].items()} == {"a": 5, "b": 5, "c": 5}
