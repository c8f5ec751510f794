"""Per-model configuration as code: files, validation, and a live worker picking up changes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from scripts.harness import WorkerProcess, kafka_producer, wait_for
from streams.errors import ConfigurationError
from streams.keys import RedisKeys
from streams.model_config import ModelConfigStore, load_file
from streams.settings import Settings


def test_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "churn.json").write_text(json.dumps({"model_id": "churn", "task": "regression"}))
    (tmp_path / "all.yaml").write_text(
        "model_id: a\nignore_features: [user_id]\n---\n- model_id: b\n  missing_rate_min_jump: 0.5\n"
    )
    assert [c.task for c in load_file(tmp_path / "churn.json")] == ["regression"]
    configs = load_file(tmp_path / "all.yaml")
    assert [c.model_id for c in configs] == ["a", "b"]
    assert configs[0].monitor_config(Settings()).monitors("user_id") is False
    assert configs[1].monitor_config(Settings()).missing_rate_min_jump == 0.5


def test_detectors_budgets_and_windows_are_set_per_model(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "model_id: m\nconcept_drift_detector: eddm\nfalse_alarm_budget_events: 1e7\n"
        "drift_window: 1000\nreference_events: 5000\nmax_segments: 2\n"
    )
    config = load_file(tmp_path / "m.yaml")[0].monitor_config(Settings())
    assert (config.concept_drift_detector, config.budget_events, config.window, config.reference_events) == (
        "eddm",
        1e7,
        1000,
        5000,
    )
    default = load_file(tmp_path / "m.yaml")[0].model_copy(update={"concept_drift_detector": None})
    assert default.monitor_config(Settings()).concept_drift_detector is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"model_id": "m", "concept_drift_detector": "kswin"}', "concept_drift_detector"),
        ('{"model_id": "bad id"}', "model_id"),
        ('{"model_id": "m", "task": "ranking"}', "task"),
        ('{"model_id": "m", "drift_min_effct": 0.3}', "drift_min_effct"),
        ("{not json", "m.json"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=reason):
        load_file(path)


def test_a_running_worker_picks_up_a_new_configuration(driftline_env: dict[str, str], tmp_path: Path) -> None:
    client = redis.Redis.from_url(driftline_env["DRIFTLINE_REDIS_URL"], decode_responses=True)
    prefix = driftline_env["DRIFTLINE_REDIS_PREFIX"]
    producer = kafka_producer(driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"])

    def send(start: int, n: int) -> None:
        for i in range(start, start + n):
            event = {
                "model_id": "price",
                "prediction_id": str(i),
                "features": {"x": i % 7, "user_id": i},
                "prediction": 3,
            }
            producer.send(driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"], json.dumps(event).encode())
            outcome = {"model_id": "price", "prediction_id": str(i), "label": 3 + (i % 2)}
            producer.send(driftline_env["DRIFTLINE_TOPIC_OUTCOMES"], json.dumps(outcome).encode())
        assert producer.flush() == 0 and producer.failed == 0

    def field_is(name: str, value: str) -> bool | None:
        return True if client.hget(f"{prefix}model:{{price}}", name) == value else None

    with WorkerProcess(driftline_env, tmp_path / "worker.log").start().ready():
        send(0, 50)
        wait_for(lambda: field_is("joined", "50"), 30, "50 joined", every_s=0.2)
        assert client.hget(f"{prefix}model:{{price}}", "metric") == "accuracy"  # integers: classes
        assert client.hexists(f"{prefix}model:{{price}}:features", "user_id")

        path = tmp_path / "price.yaml"
        path.write_text("model_id: price\ntask: regression\nignore_features: [user_id]\n")
        ModelConfigStore(RedisKeys(prefix)).apply(client, load_file(path))
        time.sleep(3)  # workers poll every 2 s
        send(50, 50)
        wait_for(lambda: field_is("metric", "mae"), 30, "metric mae", every_s=0.2)
        model = client.hgetall(f"{prefix}model:{{price}}")
    producer.close()
    assert model["metric"] == "mae" and float(model["mae"]) == pytest.approx(0.5)
    assert model["predictions"] == "100"
    assert not client.hexists(f"{prefix}model:{{price}}:features", "user_id")
    assert client.hexists(f"{prefix}model:{{price}}:features", "x")
