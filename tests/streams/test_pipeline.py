"""The pipeline's flush against the real Redis: counts go out before the detectors run, decisions soon after."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from streams.embedded import EmbeddedRedis
from streams.keys import RedisKeys
from streams.pipeline import Outputs, Pipeline
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.tasks import CheckpointStore


@dataclass(frozen=True)
class Partition:
    topic: str
    partition: int


@dataclass(frozen=True)
class Record:
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None


def _outputs(sent: list[tuple[str, Any]]) -> Outputs:
    """Outputs that record what the pipeline sends (the Kafka side is not part of this test)."""

    async def delivered() -> None:
        return None

    async def send(kind: str, *args: Any) -> Any:
        sent.append((kind, args))
        return delivered()

    async def commit(offsets: dict[Any, int]) -> bool:
        sent.append(("commit", (offsets,)))
        return True

    async def nothing(*args: Any) -> None:
        return None

    return Outputs(
        lambda p, v: send("forward", p, v),
        lambda k, v: send("dead_letter", k, v),
        lambda k, v: send("alert", k, v),
        commit,
        nothing,
        nothing,
        lambda tp: False,
    )


def test_counts_are_written_before_the_detectors_run_and_decisions_by_a_later_tick(
    redis_server: EmbeddedRedis, unique: str
) -> None:
    settings = Settings(
        topic_predictions=f"{unique}.predictions",
        topic_events=f"{unique}.events",
        partitions=1,
        decision_interval_s=0.0,
        max_disorder_s=0.0,
        model_probation_events=1,
        watermark_idle_s=3600.0,
        max_task_idle_ms=0,  # no wait for the empty events partition
        batch_window_s=60.0,  # flushes and writes come only when the test sets their clocks back
    )
    keys = RedisKeys(f"t{unique}:")

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        store = CheckpointStore(client, keys, unique, settings.topic_events)
        pipeline = Pipeline(settings, 1, store, RedisStateWriter(client, keys, 1000), _outputs([]))
        partitions = {Partition(settings.topic_predictions, 0), Partition(settings.topic_events, 0)}
        await pipeline.assign(partitions)
        now_ms = int(time.time() * 1000)
        events = [
            {"model_id": "m", "prediction_id": str(i), "features": {"x": float(i)}, "prediction": 1, "timestamp": i}
            for i in range(5)
        ]
        records = [Record(i, now_ms, b"m", json.dumps(e).encode()) for i, e in enumerate(events)]
        pipeline.last_flush = pipeline.last_write = time.monotonic() - 120.0
        await pipeline.take({Partition(settings.topic_predictions, 0): records}, partitions)
        # that flush wrote the counts first, then decided; the decisions wait for the write pace (60 s)
        assert pipeline.stats.flushes == 1
        assert await client.hget(keys.model("m"), "predictions") == "5"
        assert await client.hgetall(keys.features("m")) == {}
        assert pipeline.write_pending
        pipeline.last_write = time.monotonic() - 120.0  # the pace has passed: the next tick writes them
        async with pipeline.lock:
            await pipeline.tick()
        assert not pipeline.write_pending
        assert json.loads((await client.hgetall(keys.features("m")))["x"])["n"] == 4  # the newest waits, held
        await client.aclose()

    asyncio.run(scenario())
