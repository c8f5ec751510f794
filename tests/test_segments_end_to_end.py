"""Segments through the running worker: one region of a model drifts, only that region's alert fires.

The region is small (12% of the traffic) and moves 0.75 std on one feature: a
change the model as a whole barely sees (0.09 std), which its own segment
monitor catches. The alert on the alerts topic and in Redis names the segment,
and nothing else alerts: not the model, not the other segments.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import redis

from scripts.harness import WorkerProcess, kafka_producer, wait_for_counts
from streams.keys import RedisKeys
from tests.test_end_to_end import read_json_records

EVENTS = 9000
DRIFT_AT = 4000
REGIONS = {"eu": 12, "us": 45, "ap": 40, "sa": 3}  # sa: below the minimum sample, pooled


def _events(rng: random.Random, t0: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    predictions, outcomes = [], []
    for i in range(EVENTS):
        region = rng.choices(list(REGIONS), list(REGIONS.values()))[0]
        x = [rng.gauss(0.0, 1.0) for _ in range(3)]
        if region == "eu" and i >= DRIFT_AT:
            x[1] += 0.75
        p = 1 / (1 + math.exp(-2 * x[0]))
        prediction = int(p > 0.5)
        predictions.append(
            {
                "model_id": "shop",
                "prediction_id": f"q{i}",
                "prediction": prediction,
                "score": round(p if prediction else 1 - p, 5),
                "timestamp": t0 + i * 0.01,
                "features": {
                    "x0": round(x[0], 5),
                    "x1": round(x[1], 5),
                    "x2": round(x[2], 5),
                    "plan": rng.choice(["basic", "pro", "team"]),
                },
                "segment": {"region": region},
            }
        )
        outcomes.append({"model_id": "shop", "prediction_id": f"q{i}", "label": int(rng.random() < p)})
    return predictions, outcomes


def test_a_drifting_segment_alerts_alone_with_its_segment(driftline_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **driftline_env,
        "DRIFTLINE_SEGMENT_SELECTION_EVENTS": "500",
        "DRIFTLINE_SEGMENT_MIN_EVENTS": "30",
        "DRIFTLINE_BASELINE_EVENTS": "200",
        "DRIFTLINE_REFERENCE_EVENTS": "300",
    }
    predictions, outcomes = _events(random.Random(33), time.time() - 3600)
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"], decode_responses=True)
    prefix = env["DRIFTLINE_REDIS_PREFIX"]
    model = f"{prefix}model:{{shop}}"
    with WorkerProcess(env, tmp_path / "worker.log").start().ready() as worker:
        with kafka_producer(env["DRIFTLINE_KAFKA_BOOTSTRAP"]) as producer:
            for start in range(0, EVENTS, 100):
                producer.send(
                    env["DRIFTLINE_TOPIC_PREDICTIONS"],
                    json.dumps(predictions[start : start + 100]).encode(),
                    key=b"shop",
                )
                if start >= 200:  # labels follow a little behind their predictions
                    producer.send(
                        env["DRIFTLINE_TOPIC_OUTCOMES"],
                        json.dumps(outcomes[start - 200 : start - 100]).encode(),
                        key=b"shop",
                    )
            producer.send(env["DRIFTLINE_TOPIC_OUTCOMES"], json.dumps(outcomes[EVENTS - 200 :]).encode(), key=b"shop")
            assert producer.flush() == 0 and producer.failed == 0
        wait_for_counts(client, RedisKeys(prefix), {"shop": {"joined": EVENTS}}, timeout_s=60)
        time.sleep(1.0)  # the last batch's alerts are published with its state
        alerts = [
            a
            for _, a in read_json_records(
                env["DRIFTLINE_KAFKA_BOOTSTRAP"], env["DRIFTLINE_TOPIC_ALERTS"], until=10**6, timeout_s=8
            )
        ]
        assert worker.alive
    assert client.hget(model, "predictions") == str(EVENTS) and client.hget(model, "joined") == str(EVENTS)

    firing = [(a["kind"], a["feature"], a["segment"]) for a in alerts if a["status"] == "firing"]
    assert firing == [("data_drift", "x1", {"region": "eu"})], f"expected only eu's x1 drift, got {alerts}"
    assert client.xlen(f"{prefix}alerts") == len(alerts)

    open_alerts = [json.loads(v) for v in client.hvals(f"{model}:alerts")]
    assert [(a["kind"], a["feature"], a["segment"]) for a in open_alerts] == [("data_drift", "x1", {"region": "eu"})]
    assert open_alerts[0]["alert_id"] == alerts[0]["alert_id"]
    assert client.hget(model, "status") in ("warning", "critical") and client.hget(model, "open_alerts") == "1"

    segments = {k: json.loads(v) for k, v in client.hgetall(f"{model}:segments").items()}
    assert set(segments) == {'{"region":"eu"}', '{"region":"us"}', '{"region":"ap"}', '{"_pooled":"other"}'}
    eu, pooled = segments['{"region":"eu"}'], segments['{"_pooled":"other"}']
    assert eu["status"] in ("warning", "critical") and eu["open_alerts"] == 1 and eu["metric"] == "accuracy"
    assert pooled["pooled"] is True and pooled["segment"] == {"_pooled": "other"} and pooled["status"] == "ok"
    assert all(s["status"] == "ok" for k, s in segments.items() if k != '{"region":"eu"}')
    assert sum(s["events"] for s in segments.values()) == EVENTS - 500  # monitoring starts after the selection
