"""The benchmark's other consumers, each run as a child process: ``python -m scripts.bench_roles ROLE``.

``floor``
    A plain aiokafka ``getmany`` loop that orjson-decodes every event and
    touches every feature value: no detection, no Redis. Whatever driftline
    does beyond it is its own cost.
``peer``
    What a typical user writes first: one stock Faust agent per input topic,
    stdlib ``json``, a river ``ADWIN`` per numeric feature, a rolling accuracy
    per model, one Redis ``HSET`` per event.
``latency_floor``
    The latency floor: a plain aiokafka consumer (driftline's fetch wait)
    that orjson-decodes every event as it comes and adds the probe model's
    predictions to its Redis hash, one ``HINCRBY`` per fetch. The probe times
    it as it times driftline: what the broker, the client and Redis cost.
``probe``
    Polls one model's ``predictions`` in Redis about every millisecond and
    prints (time, count) at each change: produce-to-Redis latency.

Settings come from ``DRIFTLINE_*`` (topics, bootstrap, Redis); ``BENCH_*``
variables give what each role needs besides.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import defaultdict
from typing import Any

import orjson
import redis

from scripts.harness import cpu_seconds, peak_rss_mb
from streams.keys import RedisKeys
from streams.settings import Settings


def floor() -> None:
    """Consume everything, decode it, touch every feature value; print rate, RSS and CPU as JSON."""
    asyncio.run(_floor(int(os.environ["BENCH_EVENTS"])))


async def _floor(expected: int) -> None:
    from aiokafka import AIOKafkaConsumer

    settings = Settings()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    events = touched = 0
    try:
        await consumer.seek_to_beginning(*await _assign_inputs(consumer, settings))
        started = None
        while events < expected:
            fetched = await consumer.getmany(timeout_ms=50)
            if fetched and started is None:
                started = time.perf_counter()
            for records in fetched.values():
                for record in records:
                    value = orjson.loads(record.value)
                    for event in value if isinstance(value, list) else (value,):
                        events += 1
                        for v in event.get("features", {}).values():
                            touched += v is not None
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    print(
        json.dumps(
            {
                "events": events,
                "seconds": elapsed,
                "touched": touched,
                "rss_mb": peak_rss_mb(os.getpid()),
                "cpu_s": cpu_seconds(os.getpid()),
            }
        ),
        flush=True,
    )


async def _assign_inputs(consumer: Any, settings: Settings) -> list[Any]:
    """Assign every partition of the predictions and outcomes topics to ``consumer``; return them."""
    from aiokafka.structs import TopicPartition

    tps = [
        TopicPartition(topic, p)
        for topic in (settings.topic_predictions, settings.topic_outcomes)
        for p in await _partitions(consumer, topic)
    ]
    consumer.assign(tps)
    return tps


async def _partitions(consumer: Any, topic: str) -> list[int]:
    for _ in range(100):
        await consumer._client.force_metadata_update()  # noqa: SLF001 - the topic is new to this client
        if parts := consumer.partitions_for_topic(topic):
            return sorted(parts)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no partitions for {topic}")


def peer() -> None:
    """A naive Faust app: stdlib json, river detectors per event, one Redis HSET per event."""
    import faust
    import redis.asyncio as aioredis
    from river import drift, metrics, utils

    settings = Settings()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    db = aioredis.Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.redis_prefix)
    adwins: dict[str, dict[str, Any]] = defaultdict(dict)
    accuracy: dict[str, Any] = defaultdict(lambda: utils.Rolling(metrics.Accuracy(), window_size=1000))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"predictions": 0, "outcomes": 0, "joined": 0})
    pending: dict[tuple[str, str], Any] = {}
    early: dict[tuple[str, str], Any] = {}

    async def save(model_id: str) -> None:
        await db.hset(keys.model(model_id), mapping={**counts[model_id], "accuracy": accuracy[model_id].get()})

    @app.agent(app.topic(settings.topic_predictions, **raw))
    async def on_prediction(stream: Any) -> None:
        async for value in stream:
            data = json.loads(value)
            for event in data if isinstance(data, list) else [data]:
                model_id = event["model_id"]
                counts[model_id]["predictions"] += 1
                for name, x in event["features"].items():
                    if isinstance(x, (int, float)) and not isinstance(x, bool):
                        adwins[model_id].setdefault(name, drift.ADWIN()).update(x)
                key = (model_id, event["prediction_id"])
                if key in early:
                    accuracy[model_id].update(early.pop(key), event["prediction"])
                    counts[model_id]["joined"] += 1
                else:
                    pending[key] = event["prediction"]
                await save(model_id)

    @app.agent(app.topic(settings.topic_outcomes, **raw))
    async def on_outcome(stream: Any) -> None:
        async for value in stream:
            data = json.loads(value)
            for event in data if isinstance(data, list) else [data]:
                model_id = event["model_id"]
                counts[model_id]["outcomes"] += 1
                key = (model_id, event["prediction_id"])
                if key in pending:
                    accuracy[model_id].update(event["label"], pending.pop(key))
                    counts[model_id]["joined"] += 1
                else:
                    early[key] = event["label"]
                await save(model_id)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        if assigned:
            await db.set(os.environ["BENCH_READY_KEY"], os.getpid())

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def latency_floor() -> None:
    """Count the probe model's predictions into Redis as they are fetched, until ``BENCH_TIMEOUT_S``."""
    asyncio.run(_latency_floor(float(os.environ["BENCH_TIMEOUT_S"])))


async def _latency_floor(seconds: float) -> None:
    from aiokafka import AIOKafkaConsumer

    settings = Settings()
    client = redis.Redis.from_url(settings.redis_url)
    key = os.environ["BENCH_KEY"]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        await consumer.seek_to_end(*await _assign_inputs(consumer, settings))
        await consumer.getmany(timeout_ms=100)
        client.set(os.environ["BENCH_READY_KEY"], os.getpid())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=50)
            probes = sum(
                orjson.loads(record.value).get("model_id") == "probe"
                for records in fetched.values()
                for record in records
            )
            if probes:
                client.hincrby(key, "predictions", probes)
    finally:
        await consumer.stop()


def probe() -> None:
    """Poll one model's ``predictions`` about every millisecond; print [time, count] at each change."""
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    key, probes = os.environ["BENCH_KEY"], int(os.environ["BENCH_PROBES"])
    deadline = time.monotonic() + float(os.environ["BENCH_TIMEOUT_S"])
    transitions: list[tuple[float, int]] = []
    last = 0
    client.set("bench:probe-ready", 1)  # the bench starts its traffic once the probe polls
    while last < probes and time.monotonic() < deadline:  # gives up at the deadline: lost probes are reported
        raw = client.hget(key, "predictions")
        now = time.time()
        count = int(raw) if raw is not None else 0
        if count > last:
            transitions.append((now, count))
            last = count
        time.sleep(0.001)
    print(json.dumps(transitions), flush=True)


if __name__ == "__main__":
    {"floor": floor, "latency_floor": latency_floor, "peer": peer, "probe": probe}[sys.argv[1]]()
