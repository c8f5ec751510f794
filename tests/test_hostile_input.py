"""Hostile messages through a running worker: it never dies, and the good events around them count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import redis

from scripts.harness import WorkerProcess, kafka_producer, read_topic, wait_for_counts
from streams.keys import RedisKeys

GOOD_PER_MODEL = 300


def _hostile(rng: random.Random) -> list[bytes]:
    """Messages that each hold exactly one rejected event (or one undecodable message)."""
    good = {"model_id": "ok", "prediction_id": "x", "features": {"a": 1}, "prediction": 1}
    return [
        bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) + b"\xff",
        b"NaN",
        b"Infinity",
        b"1e400",
        b"9" * 5000,
        b"[" * 100_000,
        b"{" * 50_000,
        b'{"model_id": "m", "prediction_id": "p", "features": {"x": NaN}, "prediction": 1}',
        json.dumps({**good, "features": {"a": [1, 2]}}).encode(),
        json.dumps({**good, "features": {"a": {"b": {"c": {}}}}}).encode(),
        json.dumps({**good, "features": "a=1"}).encode(),
        json.dumps({**good, "prediction": None}).encode(),
        json.dumps({**good, "score": 10**30}).encode(),
        json.dumps({**good, "timestamp": 10**15}).encode(),
        json.dumps({**good, "model_id": "x" * 129}).encode(),
        json.dumps({**good, "prediction_id": "p" * 100_000}).encode(),
        json.dumps({**good, "features": {"k" * 129: 1}}).encode(),
        json.dumps({**good, "segment": {"region": 1}}).encode(),
        json.dumps({**good, "features": {"blob": "z" * 600_000}, "model_id": 7}).encode(),
        json.dumps([good | {"model_id": "bad id"}]).encode(),
        b"true",
        b"null",
        b'"text"',
    ]


def test_worker_survives_hostile_input_and_counts_the_good_events(
    driftline_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(99)
    hostile = _hostile(rng)
    producer = kafka_producer(driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"], max_request_size=2**21)
    with WorkerProcess(driftline_env, tmp_path / "worker.log").start().ready() as worker:
        bad = iter(hostile)
        for i in range(GOOD_PER_MODEL):
            for model in ("alpha", "beta"):
                event = {
                    "model_id": model,
                    "prediction_id": f"{model}-{i}",
                    "features": {"a": rng.random()},
                    "prediction": 1,
                }
                producer.send(driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(event).encode())
            if i % 10 == 0 and (message := next(bad, None)) is not None:
                producer.send(driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"], message)
        assert producer.flush() == 0 and producer.failed == 0
        producer.close()
        client = redis.Redis.from_url(driftline_env["DRIFTLINE_REDIS_URL"], decode_responses=True)
        prefix = driftline_env["DRIFTLINE_REDIS_PREFIX"]
        want = {m: {"predictions": GOOD_PER_MODEL} for m in ("alpha", "beta")}
        seen = wait_for_counts(client, RedisKeys(prefix), want, timeout_s=60)
        counts = [seen[m]["predictions"] for m in ("alpha", "beta")]
        records = read_topic(
            driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"],
            driftline_env["DRIFTLINE_TOPIC_DEADLETTER"],
            count=len(hostile),
            timeout_s=30,
            fetch_max_bytes=2**22,
        )
        letters: list[dict] = [json.loads(record.value) for record in records]
        assert worker.alive
    assert counts == [str(GOOD_PER_MODEL)] * 2
    assert len(letters) == len(hostile)
    assert all(letter["error"] and "\n" not in letter["error"] for letter in letters)
    assert client.hget(f"{prefix}model:{{ok}}", "invalid") == "9"  # the rejects that named a valid model
