"""Segments through the worker's state: routing, the join, checkpoints, configuration and Redis."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import redis
import redis.asyncio

from detectors.alerts import segment_key
from detectors.segments import POOLED, POOLED_KEY
from streams import codec
from streams.embedded import EmbeddedRedis
from streams.events import OutcomeEvent, PredictionEvent
from streams.join import LabelJoin
from streams.keys import RedisKeys
from streams.model_config import ModelConfig
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from streams.status import render_status
from tests.streams.feeding import feed

SETTINGS = Settings(segment_selection_events=300, segment_min_events=30, reference_events=300, model_probation_events=1)
EU, US = segment_key({"region": "eu"}), segment_key({"region": "us"})


def _events(n: int, seed: int = 1, start: int = 0, drift_at: int | None = None) -> list[Any]:
    """Predictions in eu (60%), us (35%) and ap (5%, pooled); from ``drift_at``, x moves 1.5 std in us only.

    Each outcome follows its prediction 3 events later; one in ten comes before it.
    """
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(start, start + n):
        region = rng.choices(["eu", "us", "ap"], [60, 35, 5])[0]
        x = rng.gauss(1.5 if drift_at is not None and i >= drift_at and region == "us" else 0.0, 1.0)
        plan = rng.choice("ab")
        prediction = PredictionEvent(
            "m", f"p{i}", {"x": x, "plan": plan}, int(plan == "a"), 0.8, "v1", 1000.0 + i, {"region": region}
        )
        label = int(rng.random() < 0.8)
        if i % 10 == 0:
            out += [OutcomeEvent("m", f"p{i}", label, 1000.0 + i), prediction]
        else:
            out.append(prediction)
            if i >= 3 and (i - 3) % 10:
                out.append(OutcomeEvent("m", f"p{i - 3}", label, 1000.0 + i))
    return out


def _run(state: ModelState, events: list[Any]) -> list[tuple[str, str, Any]]:
    return [(a.alert_id, a.status, a.segment) for a in feed(state, events, SETTINGS, every=50)]


def test_the_join_returns_each_predictions_segment_in_either_order() -> None:
    join = LabelJoin()
    assert join.add_prediction(PredictionEvent("m", "p1", {}, 1, None, "", 1.0, {"region": "eu"}), segment=EU) == []
    assert join.pending["p1"] == (1, None, 1.0, EU)
    assert join.add_outcome(OutcomeEvent("m", "p1", 1, 2.0))[0].segment == EU
    join.add_outcome(OutcomeEvent("m", "p2", 0, 2.0))  # the label first
    assert (
        join.add_prediction(PredictionEvent("m", "p2", {}, 1, None, "", 3.0, {"region": "us"}), segment=US)[0].segment
        == US
    )
    join.add_prediction(PredictionEvent("m", "p3", {}, 1, None, "", 4.0, None))
    assert join.pending["p3"] == (1, None, 4.0, None)
    assert join.add_outcome(OutcomeEvent("m", "p3", 1, 5.0))[0].segment is None


def test_predictions_and_joined_outcomes_reach_their_segment() -> None:
    state = ModelState.create("m", SETTINGS)
    feed(state, _events(2000), SETTINGS)
    segments = state.segments
    assert segments is not None and segments.chosen == [EU, US]
    assert sum(segments.events.values()) == 2000 - 300  # monitoring starts after the selection
    summary = segments.summary()
    assert set(summary) == {EU, US, POOLED_KEY} and summary[POOLED_KEY]["segment"] == POOLED
    for key in (EU, US, POOLED_KEY):
        monitor = segments.monitors[key]
        assert monitor.performance is not None and monitor.performance.n > 0
        assert summary[key]["metric"] == "accuracy"
    joined = sum(m.performance.n for m in segments.monitors.values())
    assert 0.8 * (2000 - 300) < joined <= state.join.joined  # outcomes of predictions made while selecting too


def test_a_segment_drift_alerts_with_the_segment_and_counts_in_the_model_status() -> None:
    state = ModelState.create("m", SETTINGS)
    fired = feed(state, _events(6000, drift_at=3000), SETTINGS, every=50)
    in_segments = [a for a in fired if a.segment is not None]
    assert {(a.status, a.evidence.kind, a.evidence.feature) for a in in_segments} == {("firing", "data_drift", "x")}
    assert [a.segment for a in in_segments] == [{"region": "us"}]
    assert {a.alert_id for a in in_segments}.isdisjoint(a.alert_id for a in fired if a.segment is None)
    summary = state.summary(now=0.0)
    assert summary["status"] in ("warning", "critical")
    assert summary["open_alerts"] == len(state.monitor.alert_book.open) + 1


def test_a_restored_model_with_segments_continues_like_an_uninterrupted_run() -> None:
    first, second = _events(2500, seed=2, drift_at=3000), _events(3500, seed=3, start=2500, drift_at=3000)
    straight = ModelState.create("m", SETTINGS)
    expected = _run(straight, first + second)
    interrupted = ModelState.create("m", SETTINGS)
    fired = _run(interrupted, first)
    restored = codec.decode(codec.encode(interrupted), ModelState)
    fired += _run(restored, second)
    assert fired == expected and any(status == "firing" and seg == {"region": "us"} for _, status, seg in fired)
    assert restored.segments.summary() == straight.segments.summary()
    assert restored.summary(now=0.0) == straight.summary(now=0.0)


def test_the_model_file_sets_the_cap_and_a_new_cap_restarts_the_selection() -> None:
    state = ModelState.create("m", SETTINGS)
    feed(state, _events(6000, drift_at=3000), SETTINGS, every=50)
    assert state.segments.chosen == [EU, US] and state.segments.open_alerts() == 1
    state.configure(SETTINGS, ModelConfig(model_id="m", max_segments=1))
    resolved = [a for a in state.alerts(now=0.0) if a.segment is not None]
    assert [(a.status, a.segment) for a in resolved] == [("resolved", {"region": "us"})]
    assert state.segments.max_segments == 1 and state.segments.chosen is None
    feed(state, _events(400, start=6000), SETTINGS)
    assert state.segments.chosen == [EU]
    fresh = ModelState.create("n", SETTINGS)
    feed(fresh, _events(5), SETTINGS)
    fresh.configure(SETTINGS, ModelConfig(model_id="n", max_segments=0))
    assert fresh.segments.enabled is False


def test_settings_refuse_a_minimum_above_the_selection() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="segment_min_events"):
        Settings(segment_selection_events=100, segment_min_events=101)


def test_redis_holds_segment_summaries_and_segment_alerts(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, unique: str
) -> None:
    keys = RedisKeys(f"t{unique}:")
    state = ModelState.create("m", SETTINGS)
    fired = feed(state, _events(6000, drift_at=3000), SETTINGS, every=50)

    async def write(alerts: list) -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        await RedisStateWriter(client, keys, stream_maxlen=100).write([state], alerts, now=0.0)
        await client.aclose()

    asyncio.run(write(fired))
    hash_ = {k: json.loads(v) for k, v in redis_client.hgetall(keys.segments("m")).items()}
    assert keys.segments("m") == f"t{unique}:model:{{m}}:segments"
    assert set(hash_) == {EU, US, POOLED_KEY}
    assert hash_[US]["open_alerts"] == 1 and hash_[US]["status"] in ("warning", "critical")
    assert hash_[EU] | {"events": 0, "accuracy": 0} == {
        "segment": {"region": "eu"},
        "events": 0,
        "monitored": True,
        "pooled": False,
        "status": "ok",
        "open_alerts": 0,
        "metric": "accuracy",
        "accuracy": 0,
    }
    assert hash_[POOLED_KEY]["pooled"] is True and hash_[POOLED_KEY]["segment"] == POOLED
    assert sum(e["events"] for e in hash_.values()) == 6000 - 300
    open_alerts = [json.loads(v) for v in redis_client.hvals(keys.open_alerts("m"))]
    assert [(a["kind"], a["feature"], a["segment"]) for a in open_alerts if a["segment"]] == [
        ("data_drift", "x", {"region": "us"})
    ]
    assert redis_client.hget(keys.model("m"), "open_alerts") == str(len(open_alerts))
    assert "x [region=us]" in render_status(redis.Redis.from_url(redis_server.url, decode_responses=True), keys, "m")

    state.segments.reconfigure(state.monitor.config, max_segments=1)  # dropped segments leave the hash
    asyncio.run(write(state.alerts(now=0.0)))
    assert redis_client.hlen(keys.segments("m")) == 0
    assert all(json.loads(v)["segment"] is None for v in redis_client.hvals(keys.open_alerts("m")))
    assert state.segments.removed == []
