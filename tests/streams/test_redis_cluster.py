"""driftline on a real 3-master Redis Cluster: every client it makes, and a worker's exact counts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from redis.cluster import key_slot

from scripts.harness import model_counts, wait_for
from streams.api import ReadApi
from streams.embedded_ops import EmbeddedRedisCluster
from streams.keys import RedisKeys
from streams.launch import WorkerProcess
from streams.model_config import ModelConfig, ModelConfigStore
from streams.redis_client import async_client, connect, sync_client
from streams.redis_state import RedisStateWriter
from streams.registry import WorkerRegistry, expiry_key, read_live_workers
from streams.settings import Settings
from streams.state import ModelState
from streams.tasks import CheckpointStore, TaskState
from tests.streams.feeding import feed, prediction


def test_keys_that_move_together_share_a_slot(unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    model = {
        key_slot(k.encode()) for k in (keys.model("m"), keys.features("m"), keys.open_alerts("m"), keys.segments("m"))
    }
    store = CheckpointStore.__new__(CheckpointStore)
    store.keys, store.scope = keys, "group/topic"
    parts = ("lease", "meta", "models", "join:m", "join:other")
    checkpoints = {key_slot(store.key(p, what).encode()) for p in range(8) for what in parts}
    assert len(model) == 1 and len(checkpoints) == 1
    assert key_slot(keys.workers.encode()) == key_slot(expiry_key(keys).encode())


def test_state_checkpoints_registry_configs_and_api_work_on_a_cluster(
    redis_cluster: EmbeddedRedisCluster,
    unique: str,
) -> None:
    settings = Settings(redis_url=redis_cluster.url, model_probation_events=1)
    keys = RedisKeys(f"t{unique}:")
    tasks = [TaskState(p, settings) for p in range(3)]
    for n, task in enumerate(tasks):
        for model in (f"m{n}a", f"m{n}b"):
            state = task.model(model)
            assert isinstance(state, ModelState)
            feed(state, [prediction(str(i), 100.0 + i, model_id=model) for i in range(20 + n)], settings)

    async def run() -> tuple[set[int], dict, list]:
        client = async_client(settings)
        await connect(client)
        store = CheckpointStore(client, keys, "group", "topic")
        for task in tasks:
            task.lease = (await store.acquire(task.partition))[0]
        lost = await store.save(tasks)
        states = [s for task in tasks for s in task.models.values()]
        await RedisStateWriter(client, keys, stream_maxlen=10).write(states, [], now=300.0)
        registry = WorkerRegistry(client, keys, ttl_s=30)
        await registry.announce([0, 1, 2])
        api = ReadApi(client, keys)
        answers = (await api.models(), await api.workers())
        restored = [(await store.acquire(p))[1] is not None for p in range(3)]
        await client.aclose()
        return lost, answers[0], [answers[1], restored]

    lost, models, (workers, restored) = asyncio.run(run())
    assert lost == set() and restored == [True, True, True]
    assert {m["model_id"]: m["predictions"] for m in models["models"]} == {
        "m0a": 20,
        "m0b": 20,
        "m1a": 21,
        "m1b": 21,
        "m2a": 22,
        "m2b": 22,
    }
    assert [w["partitions"] for w in workers["workers"]] == [[0, 1, 2]]
    client = sync_client(settings, decode_responses=True)
    assert len(read_live_workers(client, keys)) == 1
    store = ModelConfigStore(keys)
    assert store.apply(client, [ModelConfig(model_id="m0a", max_segments=0)]) == 1
    assert store.show(client) == {"m0a": {"model_id": "m0a", "max_segments": 0, "ignore_features": []}}


def test_a_worker_on_a_cluster_keeps_exact_counts(
    redis_cluster: EmbeddedRedisCluster,
    driftline_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from kafka import KafkaProducer

    env = {**driftline_env, "DRIFTLINE_REDIS_URL": redis_cluster.url}
    models = [f"model-{n}" for n in range(6)]
    producer = KafkaProducer(bootstrap_servers=env["DRIFTLINE_KAFKA_BOOTSTRAP"], linger_ms=5)
    with WorkerProcess(env, tmp_path / "worker.log").start().ready() as worker:
        for i in range(300):
            batch = [
                {"model_id": m, "prediction_id": f"{m}-{i}", "features": {"x": i}, "prediction": 1} for m in models
            ]
            producer.send(env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(batch).encode())
        producer.flush()
        settings = worker.settings()
        client = sync_client(settings)
        keys = RedisKeys(settings.redis_prefix)
        done = {m: (300, 0, 0) for m in models}
        counts = wait_for(
            lambda: (c := model_counts(client, keys, models)) == done and c or None, 60, "counts on the cluster"
        )
        assert worker.alive
    assert counts == done
    status = subprocess.run(
        [sys.executable, "-m", "streams", "status", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document = json.loads(status.stdout)
    assert sorted(m["model_id"] for m in document["models"]) == models
    assert document["workers"] == []  # the worker left on SIGTERM


def test_cluster_formation_is_all_masters(redis_cluster: EmbeddedRedisCluster) -> None:
    client = sync_client(Settings(redis_url=redis_cluster.url))
    masters = [n for n in client.get_nodes() if n.server_type == "primary"]
    assert len(masters) == 3
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and client.cluster_info().get("cluster_state") != "ok":
        time.sleep(0.1)
    assert client.cluster_info()["cluster_state"] == "ok"
