"""Uploaded reference samples: read, profiled, and used by a running worker."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import redis

from detectors.reference import CategoricalProfile, NumericProfile
from scripts.harness import WorkerProcess, kafka_producer, wait_for_counts
from streams.cli import main
from streams.keys import RedisKeys
from streams.reference import build_reference, read_rows


def _training_csv(path: Path, rows: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    lines = ["income,plan,age"]
    for _ in range(rows):
        age = "" if rng.random() < 0.1 else str(rng.randint(18, 80))
        lines.append(f"{rng.gauss(50_000, 10_000):.2f},{rng.choice(['basic', 'pro'])},{age}")
    path.write_text("\n".join(lines) + "\n")


def test_csv_and_json_lines_become_bounded_profiles(tmp_path: Path) -> None:
    _training_csv(tmp_path / "train.csv", 50_000)
    profiles = build_reference(read_rows(tmp_path / "train.csv"))
    assert isinstance(profiles["income"], NumericProfile) and profiles["income"].n == 50_000
    assert len(profiles["income"].quantiles) <= 201  # bounded whatever the sample size
    assert isinstance(profiles["plan"], CategoricalProfile)
    assert abs(profiles["age"].missing_rate - 0.1) < 0.01
    (tmp_path / "events.jsonl").write_text(
        "\n".join(
            json.dumps({"model_id": "m", "prediction_id": str(i), "features": {"x": i, "c": "a"}, "prediction": 1})
            for i in range(100)
        )
    )
    assert set(build_reference(read_rows(tmp_path / "events.jsonl"))) == {"x", "c"}


def test_a_worker_tests_live_data_against_the_uploaded_reference(
    driftline_env: dict[str, str], tmp_path: Path, monkeypatch: object
) -> None:
    """Live incomes run 0.5 std above training from the first event: only the reference can tell."""
    _training_csv(tmp_path / "train.csv", 20_000)
    for name, value in driftline_env.items():
        monkeypatch.setenv(name, value)  # type: ignore[attr-defined]
    assert main(["reference", "set", "credit", str(tmp_path / "train.csv")]) == 0
    client = redis.Redis.from_url(driftline_env["DRIFTLINE_REDIS_URL"], decode_responses=True)
    prefix = driftline_env["DRIFTLINE_REDIS_PREFIX"]
    producer = kafka_producer(driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"])
    rng = random.Random(9)
    with WorkerProcess(driftline_env, tmp_path / "worker.log").start().ready():
        time.sleep(2.5)  # the worker loads references with the configurations, every 2 s
        for start in range(0, 3000, 100):
            batch = [
                {
                    "model_id": "credit",
                    "prediction_id": str(i),
                    "prediction": 1,
                    "features": {
                        "income": rng.gauss(55_000, 10_000),
                        "plan": rng.choice(["basic", "pro"]),
                        "age": rng.randint(18, 80),
                    },
                }
                for i in range(start, start + 100)
            ]
            producer.send(driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(batch).encode())
        assert producer.flush() == 0 and producer.failed == 0
        producer.close()
        want = {"credit": {"predictions": 3000, "held_events": 0}}  # counted, and decided on (nothing held)
        wait_for_counts(client, RedisKeys(prefix), want, timeout_s=60)
        time.sleep(0.5)
        open_alerts = [json.loads(a) for a in client.hvals(f"{prefix}model:{{credit}}:alerts")]
    assert [(a["kind"], a["feature"]) for a in open_alerts] == [("data_drift", "income")]
    assert open_alerts[0]["detector"] == "cusum" or open_alerts[0]["detector"].startswith("windowed_")
