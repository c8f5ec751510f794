"""End to end: `driftline worker` as a subprocess, events from two foreign clients, alerts and Redis read back.

The scenario is the one of the foundation issue: several models, outcomes shuffled and
hundreds of events late (1% before their prediction), some duplicated, 10% never sent,
30% of predictions in batches, 5% unkeyed, malformed messages mixed in. Counts in
Redis must be exact, and the only alerts are the expected ones.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from scripts.harness import WorkerProcess, kafka_producer, read_topic, wait_for_counts
from streams.keys import RedisKeys

EVENTS_PER_MODEL = 2400
DRIFT_AT = 1200
MODELS = {"steady-a": "steady", "steady-b": "steady", "shifty": "data_drift", "fickle": "concept_drift"}


@dataclass
class Expected:
    predictions: int = 0
    joined_ids: set[str] = field(default_factory=set)
    outcomes: int = 0
    invalid: int = 0


def _prediction(model: str, kind: str, i: int, rng: random.Random, t0: float) -> tuple[dict[str, Any], int]:
    x = [rng.gauss(0.0, 1.0) for _ in range(4)]
    if kind == "data_drift" and i >= DRIFT_AT:
        x[1] += 1.0  # the model's input x1 moves by one standard deviation
    signal = x[0] + x[2]
    label = int(signal > 0) if rng.random() > 0.05 else int(signal <= 0)
    if kind == "concept_drift" and i >= DRIFT_AT:
        label = int(x[0] - x[2] > 0)  # same inputs, another concept
    features: dict[str, Any] = {f"x{j}": round(v, 5) for j, v in enumerate(x)}
    features["plan"] = rng.choice(["basic", "pro", "team"])
    features["tenure"] = None if rng.random() < 0.02 else rng.randint(1, 60)
    event = {
        "model_id": model,
        "prediction_id": f"{model}-{i}",
        "features": features,
        "prediction": int(signal > 0),
        "score": round(1 / (1 + math.exp(-3 * signal)), 5),
        "model_version": "v7",
        "timestamp": t0 + i * 0.05,
        "segment": {"region": rng.choice(["eu", "us"])},
    }
    return event, label


def _scenario(rng: random.Random) -> tuple[list[tuple[str, bytes | None, bytes]], dict[str, Expected]]:
    """The interleaved message sequence (topic kind, key, value) and the exact expected counts."""
    t0 = time.time() - 3600
    timeline: list[tuple[float, str, bytes | None, bytes]] = []
    expected = {model: Expected() for model in MODELS}
    for model, kind in MODELS.items():
        pending_batch: list[dict[str, Any]] = []
        for i in range(EVENTS_PER_MODEL):
            event, label = _prediction(model, kind, i, rng, t0)
            expected[model].predictions += 1
            position = i + rng.random()
            key = None if rng.random() < 0.05 else model.encode()
            if rng.random() < 0.30:
                pending_batch.append(event)
                if len(pending_batch) == 5:
                    timeline.append((position, "p", key, json.dumps(pending_batch).encode()))
                    pending_batch = []
            else:
                timeline.append((position, "p", key, json.dumps(event).encode()))
            if rng.random() < 0.10:
                continue  # this outcome is never sent
            outcome = {"model_id": model, "prediction_id": event["prediction_id"], "label": label}
            expected[model].joined_ids.add(event["prediction_id"])
            late = -rng.uniform(1, 30) if rng.random() < 0.01 else rng.uniform(1, 400)
            copies = 2 if rng.random() < 0.03 else 1
            for _ in range(copies):
                expected[model].outcomes += 1
                timeline.append((position + late, "o", model.encode(), json.dumps(outcome).encode()))
        if pending_batch:
            timeline.append((EVENTS_PER_MODEL + 1.0, "p", model.encode(), json.dumps(pending_batch).encode()))
    bad = [
        ("p", None, b"{not json"),
        ("p", b"shifty", b'"a string"'),
        (
            "p",
            b"steady-a",
            json.dumps(
                {"model_id": "steady-a", "prediction_id": "bad-1", "features": {"x0": 1}, "prediction": 1, "score": 1.7}
            ).encode(),
        ),
        (
            "p",
            b"steady-b",
            json.dumps(
                {"model_id": "steady-b", "prediction_id": "bad-2", "features": {"x0": {"deep": 1}}, "prediction": 1}
            ).encode(),
        ),
        (
            "p",
            None,
            json.dumps(
                {"model_id": "no spaces allowed", "prediction_id": "bad-3", "features": {}, "prediction": 1}
            ).encode(),
        ),
        (
            "p",
            b"fickle",
            json.dumps(
                [
                    {
                        "model_id": "fickle",
                        "prediction_id": "bad-4",
                        "features": {},
                        "prediction": 1,
                        "timestamp": "yesterday",
                    }
                ]
            ).encode(),
        ),
        ("o", b"shifty", json.dumps({"model_id": "shifty", "prediction_id": "x"}).encode()),
        ("p", None, b"\xff\xfe not utf-8"),
    ]
    for model in ("steady-a", "steady-b", "fickle", "shifty"):
        expected[model].invalid += 1
    for n, (kind, key, value) in enumerate(bad):
        timeline.append((n * 300.0 + 7.5, kind, key, value))
    timeline.sort(key=lambda item: item[0])
    return [(kind, key, value) for _, kind, key, value in timeline], expected


def _produce(env: dict[str, str], messages: list[tuple[str, bytes | None, bytes]]) -> None:
    """Half of the traffic through confluent-kafka (librdkafka's partitioner), half through kafka-python."""
    topics = {"p": env["DRIFTLINE_TOPIC_PREDICTIONS"], "o": env["DRIFTLINE_TOPIC_OUTCOMES"]}
    with (
        kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"], "confluent") as confluent,
        kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"]) as python,
    ):
        for n, (kind, key, value) in enumerate(messages):
            (confluent if n % 2 else python).send(topics[kind], value, key=key)
        assert confluent.flush(30) == 0 and python.flush(30) == 0
        assert confluent.failed == python.failed == 0


def read_json_records(bootstrap: str, topic: str, until: int, timeout_s: float) -> list[Any]:
    """(key, decoded value) of the topic's records: ``until`` of them, or what came in ``timeout_s``."""
    return [
        (record.key, json.loads(record.value))
        for record in read_topic(bootstrap, topic, count=until, timeout_s=timeout_s)
    ]


def test_scenario_counts_exactly_and_alerts_only_on_real_drift(driftline_env: dict[str, str], tmp_path: Path) -> None:
    messages, expected = _scenario(random.Random(20261126))
    with WorkerProcess(driftline_env, tmp_path / "worker.log").start().ready() as worker:
        _produce(driftline_env, messages)
        client = redis.Redis.from_url(driftline_env["DRIFTLINE_REDIS_URL"], decode_responses=True)
        prefix = driftline_env["DRIFTLINE_REDIS_PREFIX"]
        want = {
            m: {"predictions": e.predictions, "joined": len(e.joined_ids), "outcomes": e.outcomes}
            for m, e in expected.items()
        }
        seen = wait_for_counts(client, RedisKeys(prefix), want, timeout_s=120)
        time.sleep(1.0)  # the last batch's alerts are published with its state
        alerts = [
            a
            for _, a in read_json_records(
                driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"],
                driftline_env["DRIFTLINE_TOPIC_ALERTS"],
                until=10**6,
                timeout_s=10,
            )
        ]
        letters = read_json_records(
            driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"],
            driftline_env["DRIFTLINE_TOPIC_DEADLETTER"],
            until=8,
            timeout_s=20,
        )
        assert worker.alive

    for model, want in expected.items():
        got = seen[model]
        assert int(got["predictions"]) == want.predictions, model
        assert int(got["joined"]) == len(want.joined_ids), model
        assert int(got["outcomes"]) == want.outcomes, model
        assert int(got["invalid"]) == want.invalid, model
        assert int(got["unmatched_outcomes"]) == 0, model
        assert int(got["expired"]) == 0, model
        assert got["metric"] == "accuracy"
    assert client.smembers(f"{prefix}models") >= set(MODELS)

    firing = {(a["model_id"], a["kind"], a["feature"]) for a in alerts if a["status"] == "firing"}
    assert ("shifty", "data_drift", "x1") in firing
    assert ("fickle", "concept_drift", None) in firing or ("fickle", "performance", None) in firing
    unexpected = {
        f
        for f in firing
        if f[0].startswith("steady")
        or (f[0] == "shifty" and f[2] != "x1")
        or (f[0] == "fickle" and f[1] not in ("concept_drift", "performance"))
    }
    assert not unexpected, f"false alarms: {unexpected}"

    open_shifty = [json.loads(v) for v in client.hvals(f"{prefix}model:{{shifty}}:alerts")]
    assert any(a["kind"] == "data_drift" and a["feature"] == "x1" for a in open_shifty)
    assert client.hget(f"{prefix}model:{{shifty}}", "status") in ("warning", "critical")
    assert client.hget(f"{prefix}model:{{steady-a}}", "status") == "ok"
    assert client.xlen(f"{prefix}alerts") == len(alerts)
    x1 = json.loads(client.hget(f"{prefix}model:{{shifty}}:features", "x1"))
    assert x1["status"] in ("warning", "critical") and x1["n"] == EVENTS_PER_MODEL

    assert len(letters) == 8
    reasons = sorted(letter["error"].split(":")[0] for _, letter in letters)
    assert reasons == ["features.x0", "label", "message", "message", "message", "model_id", "score", "timestamp"]
    batch_letter = next(letter for _, letter in letters if letter["error"].startswith("timestamp"))
    assert batch_letter["batch_index"] == 0
    binary = next(letter for _, letter in letters if letter.get("payload_encoding") == "base64")
    assert binary["key"] is None and binary["source_topic"] == driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"]
