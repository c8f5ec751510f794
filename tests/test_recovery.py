"""Crash recovery with two workers: SIGKILL mid-stream, restart, and the counts stay exact."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import redis

from scripts.harness import WorkerProcess, kafka_producer, wait_for, wait_for_counts
from streams.keys import RedisKeys

MODELS = [f"model-{n}" for n in range(6)]
EVENTS_PER_MODEL = 2500


def _stream(env: dict[str, str], stop: threading.Event) -> None:
    """Predictions and their outcomes (a few hundred events late) at a steady pace."""
    producer = kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"])
    rng = random.Random(4)
    late: list[tuple[str, bytes, bytes]] = []
    for i in range(EVENTS_PER_MODEL):
        for model in MODELS:
            x = rng.gauss(0, 1)
            event = {
                "model_id": model,
                "prediction_id": f"{model}-{i}",
                "features": {"x": x, "y": rng.random()},
                "prediction": int(x > 0),
                "score": 0.5,
            }
            batch = json.dumps([event] if i % 3 == 0 else event).encode()
            producer.send(env["DRIFTLINE_TOPIC_PREDICTIONS"], batch, key=model.encode())
            outcome = {"model_id": model, "prediction_id": f"{model}-{i}", "label": int(x > 0)}
            late.append((model, json.dumps(outcome).encode(), b""))
        while len(late) > 300 * len(MODELS) or (i == EVENTS_PER_MODEL - 1 and late):
            model, value, _ = late.pop(0)
            producer.send(env["DRIFTLINE_TOPIC_OUTCOMES"], value, key=model.encode())
        if i % 50 == 0:
            time.sleep(0.05)  # about 6,000 events per second in all
        if stop.is_set():
            break
    producer.close()


def test_counts_stay_exact_when_workers_are_killed_and_restarted(driftline_env: dict[str, str], tmp_path: Path) -> None:
    env = {**driftline_env, "DRIFTLINE_CHECKPOINT_INTERVAL_S": "0.5"}
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log").start() for n in range(2)]
    for worker in workers:
        worker.ready()
    stop = threading.Event()
    producer = threading.Thread(target=_stream, args=(env, stop), daemon=True)
    producer.start()
    try:
        for victim in (0, 1, 0):
            time.sleep(2.5)
            workers[victim].kill()
            workers[victim] = WorkerProcess(env, tmp_path / f"worker-{victim}.log").start()
        producer.join(120)
        client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"], decode_responses=True)
        want = {m: {"predictions": EVENTS_PER_MODEL, "joined": EVENTS_PER_MODEL} for m in MODELS}
        seen = wait_for_counts(client, RedisKeys(env["DRIFTLINE_REDIS_PREFIX"]), want, timeout_s=120)
        counts = {m: [seen[m]["predictions"], seen[m]["joined"]] for m in MODELS}
        assert all(worker.alive for worker in workers)
    finally:
        stop.set()
        for worker in workers:
            worker.stop()
    assert counts == {m: [str(EVENTS_PER_MODEL)] * 2 for m in MODELS}


def test_sigterm_leaves_a_final_checkpoint(driftline_env: dict[str, str], tmp_path: Path) -> None:
    from streams import codec
    from streams.state import ModelState

    env = {**driftline_env, "DRIFTLINE_CHECKPOINT_INTERVAL_S": "3600"}  # no periodic checkpoint in this test
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    prefix = env["DRIFTLINE_REDIS_PREFIX"]
    with WorkerProcess(env, tmp_path / "worker.log").start().ready() as worker:
        with kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"]) as producer:
            for i in range(50):
                event = {"model_id": "calm", "prediction_id": str(i), "features": {"x": i}, "prediction": 0}
                producer.send(env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(event).encode())
            assert producer.flush() == 0 and producer.failed == 0
        wait_for_counts(client, RedisKeys(prefix), {"calm": {"predictions": 50}}, timeout_s=30)
        assert not client.keys(f"{prefix}checkpoint:*:models")
        assert worker.stop() == 0
    blobs = [client.hget(key, "calm") for key in client.keys(f"{prefix}checkpoint:*:models")]
    states = [codec.decode(blob, ModelState) for blob in blobs if blob is not None]
    assert [state.predictions for state in states] == [50]


def test_events_held_in_a_checkpoint_are_released_when_no_input_follows(
    driftline_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker crashes while events wait for event-time order, after the last input: its successor decides them."""
    from streams import codec
    from streams.state import ModelState

    env = driftline_env | {
        "DRIFTLINE_CHECKPOINT_INTERVAL_S": "0.2",
        "DRIFTLINE_WATERMARK_IDLE_S": "8",  # the first worker is killed before it would release them
        "DRIFTLINE_MAX_DISORDER_S": "3600",  # no watermark passes them
    }
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    prefix = env["DRIFTLINE_REDIS_PREFIX"]

    def held() -> ModelState | None:
        blobs = [client.hget(key, "calm") for key in client.keys(f"{prefix}checkpoint:*:models")]
        states = [codec.decode(blob, ModelState) for blob in blobs if blob is not None]
        return next((s for s in states if s.predictions == s.outcomes == 20), None)

    first = WorkerProcess(env, tmp_path / "first.log").start().ready()
    with kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"]) as producer:
        for i in range(20):
            event = {"model_id": "calm", "prediction_id": str(i), "features": {"x": i}, "prediction": 1}
            producer.send(env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(event).encode(), key=b"calm")
        for i in range(20):
            outcome = {"model_id": "calm", "prediction_id": str(i), "label": 1}
            producer.send(env["DRIFTLINE_TOPIC_OUTCOMES"], json.dumps(outcome).encode(), key=b"calm")
        assert producer.flush() == 0 and producer.failed == 0
    saved = wait_for(held, 30, "a checkpoint holding the events")
    first.kill()
    first.stop()
    assert (len(saved.buffer), saved.join.joined) == (40, 0)
    with WorkerProcess(env, tmp_path / "second.log").start().ready():
        want = {"calm": {"predictions": 20, "joined": 20, "held_events": 0}}
        wait_for_counts(
            redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"], decode_responses=True), RedisKeys(prefix), want, 60
        )
