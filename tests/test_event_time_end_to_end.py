"""Event time decides: one traffic played in two orders gives the same counts and the same alerts.

Three models on river's Agrawal generator (a frozen logistic regression each,
scripts/scenarios.py): one whose ``salary`` shifts by 1 std half-way, one whose
concept changes half-way, one steady. Outcomes come 30 to 90 s after their
predictions. The same events are played twice:

(a) in event-time order, into topics of one partition;
(b) over 8 partitions the way real producers spread them: keyed through
    kafka-python (murmur2) and through confluent-kafka (librdkafka's CRC32),
    unkeyed, and in JSON-array batches that mix models (two clients that keep
    within a few seconds of each other); partition 5 is produced last, minutes
    of event time behind the others, and the worker starts only once
    everything is in: it catches up a backlog.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from pathlib import Path
from typing import Any

import redis

from scripts.harness import WorkerProcess, kafka_producer, run_env, settings_of, wait_for_counts
from scripts.scenarios import generate, train_model
from streams.keys import RedisKeys
from streams.routing import partition_for
from streams.topics import ensure_topics

MODELS = {"credit": "data_drift", "churn": "concept_drift", "steady": "steady"}
EVENTS = 9000  # predictions per model, 0.05 s apart: 7.5 minutes of event time
DRIFT_AT = 4500
LATE_PARTITION = 5
ROUND = 400  # messages between two flushes of the producers: about 4 s of event time
START = 1_767_225_600.0


def _traffic() -> list[tuple[str, dict[str, Any]]]:
    """Every event of every model, as (kind, event), in event-time order."""
    model = train_model(seed=4)
    events: list[tuple[float, str, dict[str, Any]]] = []
    for k, (model_id, kind) in enumerate(MODELS.items()):
        pairs = generate(
            model_id, kind, EVENTS, DRIFT_AT, seed=40 + k, start=START, interval_s=0.05, outcome_lag_s=60.0, model=model
        )
        for prediction, outcome in pairs:
            events.append((prediction["timestamp"], "p", prediction))
            events.append((outcome["timestamp"], "o", outcome))
    events.sort(key=lambda e: e[0])
    return [(kind, event) for _, kind, event in events]


def _env(driftline_env: dict[str, str], name: str, partitions: int) -> dict[str, str]:
    """The test's settings with topics, key prefix and consumer group of their own for run ``name``."""
    tag = f"{driftline_env['DRIFTLINE_APP_ID'].removeprefix('driftline-')}-{name}"
    # A partition's first fetch can take longer than the default 100 ms wait on a loaded 2-core machine; the
    # test is about the order the aligner takes, so it waits long enough for any fetch (max.task.idle.ms).
    return run_env(
        driftline_env["DRIFTLINE_KAFKA_BOOTSTRAP"],
        driftline_env["DRIFTLINE_REDIS_URL"],
        tag,
        partitions=partitions,
        max_task_idle_ms=2000,
    )


def _in_order(env: dict[str, str], traffic: list[tuple[str, dict[str, Any]]]) -> None:
    settings = settings_of(env)
    with kafka_producer(settings.kafka_bootstrap, linger_ms=20) as producer:
        for kind, event in traffic:
            topic = settings.topic_predictions if kind == "p" else settings.topic_outcomes
            producer.send(topic, json.dumps(event).encode(), key=event["model_id"].encode(), partition=0)
        assert producer.flush(60) == 0 and producer.failed == 0


def _spread(env: dict[str, str], traffic: list[tuple[str, dict[str, Any]]]) -> None:
    """8 partitions, mixed keys and partitioners, mixed batches; partition 5 last."""
    settings = settings_of(env)
    rng = random.Random(8)
    messages: list[tuple[str, str, bytes | None, bytes, int]] = []  # client, topic, key, value, partition
    batch: list[dict[str, Any]] = []
    for kind, event in traffic:
        topic = settings.topic_predictions if kind == "p" else settings.topic_outcomes
        key = event["model_id"].encode()
        if kind == "p" and rng.random() < 0.3:
            batch.append(event)  # predictions of several models in one message
            if len(batch) >= rng.randint(2, 8):
                messages.append(("python", topic, None, json.dumps(batch).encode(), rng.randrange(8)))
                batch = []
            continue
        value, choice = json.dumps(event).encode(), rng.random()
        if choice < 0.05:
            messages.append(("python", topic, None, value, rng.randrange(8)))  # unkeyed
        elif choice < 0.5:
            messages.append(("python", topic, key, value, partition_for(event["model_id"], 8)))  # murmur2
        else:
            messages.append(("confluent", topic, key, value, zlib.crc32(key) % 8))  # librdkafka's default
    if batch:
        messages.append(("python", settings.topic_predictions, None, json.dumps(batch).encode(), 0))
    producers = {
        "python": kafka_producer(settings.kafka_bootstrap, linger_ms=20),
        "confluent": kafka_producer(settings.kafka_bootstrap, "confluent", linger_ms=20),
    }
    on_time = [m for m in messages if m[4] != LATE_PARTITION]
    behind = [m for m in messages if m[4] == LATE_PARTITION]
    for part in (on_time, behind):
        # Two clients write to the same partitions: each flushes every ROUND messages, so neither runs more
        # than a few seconds of event time ahead of the other within a partition (the disorder bound is 10 s;
        # left alone, one client can get tens of seconds ahead, and its lead is disorder the bound does not cover).
        for start in range(0, len(part), ROUND):
            for client, topic, key, value, partition in part[start : start + ROUND]:
                producers[client].send(topic, value, key=key, partition=partition)
            assert producers["python"].flush(60) == 0
            assert producers["confluent"].flush(60) == 0
    for producer in producers.values():
        assert producer.failed == 0
        producer.close()


def _play(env: dict[str, str], tmp_path: Path, produce: Any, traffic: list[tuple[str, dict[str, Any]]]) -> tuple:
    ensure_topics(settings_of(env))
    produce(env, traffic)  # all of it first: the worker catches up a backlog
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"], decode_responses=True)
    prefix = env["DRIFTLINE_REDIS_PREFIX"]
    with WorkerProcess(env, tmp_path / f"{prefix.strip(':').split(':')[-1]}.log").start().ready(90) as worker:
        want = {m: {"joined": EVENTS, "held_events": 0} for m in MODELS}
        seen = wait_for_counts(client, RedisKeys(prefix), want, timeout_s=300)
        time.sleep(2.0)  # the alerts of the last release
        alerts = [json.loads(fields["alert"]) for _, fields in client.xrange(f"{prefix}alerts")]
        assert worker.alive
    return seen, alerts


def test_one_traffic_in_two_orders_gives_the_same_counts_and_alerts(
    driftline_env: dict[str, str], tmp_path: Path
) -> None:
    traffic = _traffic()
    runs = [
        _play(_env(driftline_env, "ordered", 1), tmp_path, _in_order, traffic),
        _play(_env(driftline_env, "spread", 8), tmp_path, _spread, traffic),
    ]
    firing = []
    for seen, alerts in runs:
        for model in MODELS:
            counts = {
                k: int(seen[model][k])
                for k in (
                    "predictions",
                    "outcomes",
                    "joined",
                    "unmatched_outcomes",
                    "expired",
                    "duplicate_outcomes",
                    "late_events",
                )
            }
            assert counts == {
                "predictions": EVENTS,
                "outcomes": EVENTS,
                "joined": EVENTS,
                "unmatched_outcomes": 0,
                "expired": 0,
                "duplicate_outcomes": 0,
                "late_events": 0,
            }, model
        for alert in alerts:
            assert alert["window_start"] <= alert["window_end"], alert
        firing.append({(a["model_id"], a["kind"], a["feature"]) for a in alerts if a["status"] == "firing"})
    ordered, spread = firing
    assert ordered == spread
    assert ("credit", "data_drift", "salary") in ordered
    assert {kind for model, kind, _ in ordered if model == "churn"} & {"concept_drift", "performance"}
    assert not [a for a in ordered if a[0] == "steady"], "false alarms on the steady model"
    assert not [a for a in ordered if a[0] == "credit" and a[1] == "data_drift" and a[2] != "salary"]
