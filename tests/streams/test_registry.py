"""The worker registry: entries expire on the Redis server's clock; status lists only the live ones."""

from __future__ import annotations

import asyncio
import json
import time

import redis
import redis.asyncio

from streams.cli import main
from streams.embedded import EmbeddedRedis
from streams.keys import RedisKeys
from streams.registry import WorkerRegistry, expiry_key, read_live_workers
from streams.status import render_status


async def _announce(url: str, keys: RedisKeys, worker_id: str, ttl_s: float, partitions: list[int]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    registry = WorkerRegistry(client, keys, ttl_s)
    registry.worker_id = worker_id
    await registry.announce(partitions)
    await client.aclose()


def test_an_entry_not_refreshed_expires_and_the_next_announcement_removes_it(
    redis_server: EmbeddedRedis,
    redis_client: redis.Redis,
    unique: str,
) -> None:
    keys = RedisKeys(f"t{unique}:")
    asyncio.run(_announce(redis_server.url, keys, "host:1", 0.5, [0, 1]))
    asyncio.run(_announce(redis_server.url, keys, "host:2", 60.0, [2, 3]))
    assert set(read_live_workers(redis_client, keys)) == {"host:1", "host:2"}
    deadline = time.monotonic() + 10
    while "host:1" in read_live_workers(redis_client, keys) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(read_live_workers(redis_client, keys)) == {"host:2"}
    assert "owning partitions [2, 3]" in render_status(redis_client, keys)
    assert redis_client.hexists(keys.workers, "host:1")  # still there until someone announces
    asyncio.run(_announce(redis_server.url, keys, "host:2", 60.0, [2, 3]))
    assert redis_client.hkeys(keys.workers) == ["host:2"]
    assert redis_client.zrange(expiry_key(keys), 0, -1) == ["host:2"]


def test_status_json_lists_models_and_live_workers(
    redis_server: EmbeddedRedis,
    redis_client: redis.Redis,
    unique: str,
    capsys,
    monkeypatch,
) -> None:
    keys = RedisKeys(f"t{unique}:")
    redis_client.sadd(keys.models, "churn")
    redis_client.hset(keys.model("churn"), mapping={"predictions": 12, "accuracy": 0.75, "status": "ok"})
    redis_client.hset(keys.open_alerts("churn"), "a1", json.dumps({"alert_id": "a1", "status": "firing"}))
    asyncio.run(_announce(redis_server.url, keys, "host:7", 60.0, [0]))
    monkeypatch.setenv("DRIFTLINE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("DRIFTLINE_REDIS_PREFIX", keys.prefix)
    assert main(["status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["models"] == [{"model_id": "churn", "predictions": 12, "accuracy": 0.75, "status": "ok"}]
    assert [(w["worker_id"], w["partitions"]) for w in document["workers"]] == [("host:7", [0])]
    assert main(["status", "churn", "--json"]) == 0
    assert [a["alert_id"] for a in json.loads(capsys.readouterr().out)["open_alerts"]] == ["a1"]
