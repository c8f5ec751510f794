"""Detection through the running service: quiet on stationary models, right kind and feature on drift.

Stationary: 8 models with 20 mixed features (normal, lognormal, uniform, integer,
categorical) and 20k events each raise no alert. Drifting: one model per kind of
change, each caught within 2,000 events of the change with the right kind and feature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis

from scripts.harness import WorkerProcess, kafka_producer, read_topic, wait_for_counts
from streams.keys import RedisKeys

EVENTS = 20_000
CHANGE_AT = 6_000
BATCH = 200


def _features(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    columns: dict[str, Any] = {}
    for j in range(4):
        columns[f"normal_{j}"] = rng.normal(10 * j, 1 + j, n)
        columns[f"lognormal_{j}"] = rng.lognormal(0, 0.5 + 0.2 * j, n)
        columns[f"uniform_{j}"] = rng.uniform(-j, j + 1, n)
        columns[f"integer_{j}"] = rng.poisson(3 + 5 * j, n)
        columns[f"category_{j}"] = rng.choice(["a", "b", "c", "d", "e"], n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    return [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in columns.items()} for i in range(n)]


def _shift_mean(f: dict[str, Any], rng: np.random.Generator) -> None:
    f["normal_1"] += 0.5 * 2  # 0.5 sigma (sigma is 2)


def _double_spread(f: dict[str, Any], rng: np.random.Generator) -> None:
    f["normal_2"] = 20 + (f["normal_2"] - 20) * 2


def _category_share(f: dict[str, Any], rng: np.random.Generator) -> None:
    if f["category_3"] != "d" and rng.random() < 0.2 / 0.9:
        f["category_3"] = "d"  # its share goes from 10% to 30%


def _nulls(f: dict[str, Any], rng: np.random.Generator) -> None:
    if rng.random() < 0.2:
        f["uniform_0"] = None


DRIFTS: dict[str, tuple[Callable[[dict[str, Any], np.random.Generator], None] | None, str, str | None]] = {
    "mean-shift": (_shift_mean, "data_drift", "normal_1"),
    "spread": (_double_spread, "data_drift", "normal_2"),
    "category-mix": (_category_share, "data_drift", "category_3"),
    "nulls": (_nulls, "data_quality", "uniform_0"),
    "score-shift": (None, "prediction_drift", None),
}


def _events(model: str, seed: int, drift: Callable | None, score_shift: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    features = _features(rng, EVENTS)
    scores = rng.beta(5, 2, EVENTS)
    events = []
    for i, f in enumerate(features):
        if i >= CHANGE_AT and drift is not None:
            drift(f, rng)
        score = float(rng.beta(3, 3)) if score_shift and i >= CHANGE_AT else float(scores[i])
        events.append(
            {
                "model_id": model,
                "prediction_id": str(i),
                "features": f,
                "prediction": int(score > 0.5),
                "score": round(score, 6),
                "timestamp": 1_700_000_000 + i,
            }
        )
    return events


def test_quiet_when_stationary_and_right_when_drifting(driftline_env: dict[str, str], tmp_path: Path) -> None:
    models: dict[str, list[dict[str, Any]]] = {}
    for n in range(8):
        models[f"steady-{n}"] = _events(f"steady-{n}", n, None, False)
    for n, (name, (drift, _, _)) in enumerate(DRIFTS.items()):
        models[name] = _events(name, 100 + n, drift, name == "score-shift")
    producer = kafka_producer(driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"], linger_ms=20)
    client = redis.Redis.from_url(driftline_env["DRIFTLINE_REDIS_URL"], decode_responses=True)
    prefix = driftline_env["DRIFTLINE_REDIS_PREFIX"]
    with WorkerProcess(driftline_env, tmp_path / "worker.log").start().ready() as worker:
        for start in range(0, EVENTS, BATCH):
            for model, events in models.items():
                producer.send(
                    driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"],
                    json.dumps(events[start : start + BATCH]).encode(),
                    key=model.encode(),
                )
        assert producer.flush() == 0 and producer.failed == 0
        producer.close()
        seen = wait_for_counts(client, RedisKeys(prefix), {m: {"predictions": EVENTS} for m in models}, timeout_s=300)
        counts = [seen[m]["predictions"] for m in models]
        assert counts == [str(EVENTS)] * len(models)
        time.sleep(1)
        published = client.xlen(f"{prefix}alerts")  # every alert also goes to the Redis stream
        records = read_topic(
            driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"],
            driftline_env["DRIFTLINE_TOPIC_ALERTS"],
            count=published,
            timeout_s=30,
        )
        alerts: list[dict[str, Any]] = [json.loads(record.value) for record in records]
        assert worker.alive

    firing = [a for a in alerts if a["status"] == "firing"]
    assert not [a for a in firing if a["model_id"].startswith("steady")], "false alarms on stationary models"
    for name, (_, kind, feature) in DRIFTS.items():
        mine = [a for a in firing if a["model_id"] == name]
        assert [(a["kind"], a["feature"]) for a in mine] == [(kind, feature)], name
        # event time is 1 s per event from 1_700_000_000: the evidence ends within 2,000 events of the change
        end = datetime.fromisoformat(mine[0]["window_end"].replace("Z", "+00:00")).timestamp()
        assert CHANGE_AT <= end - 1_700_000_000 < CHANGE_AT + 2_000, (name, end - 1_700_000_000)
