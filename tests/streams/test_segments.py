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
from streams import checkpoint
from streams.embedded import EmbeddedRedis
from streams.events import OutcomeEvent, PredictionEvent
from streams.join import LabelJoin
from streams.model_config import ModelConfig
from streams.partitions import PartitionOwner, PartitionState
from streams.redis_state import RedisKeys, RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from streams.status import render_status

SETTINGS = Settings(segment_selection_events=300, segment_min_events=30, reference_events=300)
EU, US = segment_key({"region": "eu"}), segment_key({"region": "us"})


def _wire(n: int, seed: int = 1, start: int = 0, drift_at: int | None = None) -> list[dict[str, Any]]:
    """Predictions in eu (60%), us (35%) and ap (5%, pooled); from ``drift_at``, x moves 1.5 std in us only.

    Each outcome follows its prediction 3 events later; one in ten comes before it.
    """
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        region = rng.choices(["eu", "us", "ap"], [60, 35, 5])[0]
        x = rng.gauss(1.5 if drift_at is not None and i >= drift_at and region == "us" else 0.0, 1.0)
        plan = rng.choice("ab")
        prediction = {"type": "prediction", "model_id": "m", "prediction_id": f"p{i}", "features":
                      {"x": x, "plan": plan}, "prediction": int(plan == "a"), "score": 0.8,
                      "model_version": "v1", "timestamp": 1000.0 + i, "segment": {"region": region}}
        outcome = {"type": "outcome", "model_id": "m", "prediction_id": f"p{i}", "label": int(rng.random() < 0.8),
                   "timestamp": 1000.0 + i}
        if i % 10 == 0:
            out += [outcome, prediction]
        else:
            out.append(prediction)
            if i >= 3 and (i - 3) % 10:
                out.append({**outcome, "prediction_id": f"p{i - 3}"})
    return out


def _run(state: ModelState, events: list[dict[str, Any]], start: int = 0) -> list[tuple[str, str, Any]]:
    """Apply the events (the first is event ``start`` of the stream), asking for alerts every 50th event."""
    fired = []
    for k, wire in enumerate(events, start):
        state.apply(wire)
        if k % 50 == 0:
            fired += [(a.alert_id, a.status, a.segment) for a in state.alerts(now=0.0)]
    return fired


def test_the_join_returns_each_predictions_segment_in_either_order() -> None:
    join = LabelJoin()
    assert join.add_prediction(PredictionEvent("m", "p1", {}, 1, None, "", 1.0, {"region": "eu"}), EU) == []
    assert join.pending["p1"] == [1, None, 1.0, EU]
    assert join.add_outcome(OutcomeEvent("m", "p1", 1, 2.0))[0].segment == EU
    join.add_outcome(OutcomeEvent("m", "p2", 0, 2.0))  # the label first
    assert join.add_prediction(PredictionEvent("m", "p2", {}, 1, None, "", 3.0, {"region": "us"}), US)[0].segment == US
    join.add_prediction(PredictionEvent("m", "p3", {}, 1, None, "", 4.0, None))
    assert join.pending["p3"] == [1, None, 4.0]  # no segment: an entry as small as before
    assert join.add_outcome(OutcomeEvent("m", "p3", 1, 5.0))[0].segment is None


def test_predictions_and_joined_outcomes_reach_their_segment() -> None:
    state = ModelState.create("m", SETTINGS)
    for wire in _wire(2000):
        state.apply(wire)
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
    fired = [a for wire in _wire(6000, drift_at=3000) for a in (state.apply(wire), state.alerts(now=0.0))[1]]
    in_segments = [a for a in fired if a.segment is not None]
    assert {(a.status, a.evidence.kind, a.evidence.feature) for a in in_segments} == {("firing", "data_drift", "x")}
    assert [a.segment for a in in_segments] == [{"region": "us"}]
    assert {a.alert_id for a in in_segments}.isdisjoint(a.alert_id for a in fired if a.segment is None)
    summary = state.summary(now=0.0)
    assert summary["status"] in ("warning", "critical")
    assert summary["open_alerts"] == len(state.monitor.book.open) + 1


def test_a_restored_model_with_segments_continues_like_an_uninterrupted_run() -> None:
    first, second = _wire(2500, seed=2, drift_at=3000), _wire(3500, seed=3, start=2500, drift_at=3000)
    straight = ModelState.create("m", SETTINGS)
    expected = _run(straight, first + second)
    interrupted = ModelState.create("m", SETTINGS)
    fired = _run(interrupted, first)
    restored = checkpoint.loads(checkpoint.dumps(interrupted))
    fired += _run(restored, second, len(first))  # alerts asked at the same events as the uninterrupted run
    assert fired == expected and any(status == "firing" and seg == {"region": "us"} for _, status, seg in fired)
    assert restored.segments.summary() == straight.segments.summary()
    assert restored.summary(now=0.0) == straight.summary(now=0.0)


def _strip(body: Any) -> Any:
    """A checkpoint body as written before segments existed: no segment fields anywhere."""
    if isinstance(body, list):
        return [_strip(x) for x in body]
    if isinstance(body, dict):
        if body.get("__c") == "streams.state.ModelState":
            body = {**body, "v": {k: v for k, v in body["v"].items() if k != "segments"}}
        elif body.get("__c") in ("detectors.model_monitor.ModelMonitor", "detectors.alerts.AlertBook"):
            body = {**body, "v": {k: v for k, v in body["v"].items() if k != "segment"}}
        return {k: _strip(v) for k, v in body.items()}
    return body


def test_a_checkpoint_from_before_segments_restores_with_them() -> None:
    import orjson
    import zlib

    old = PartitionState(0, SETTINGS)
    plain = [{**w, "segment": None} if w["type"] == "prediction" else w for w in _wire(500)]
    for k, wire in enumerate(plain):
        old.apply_message(k, orjson.dumps({"events": [wire]}))
    doc = orjson.loads(zlib.decompress(old.snapshot()))
    blob = zlib.compress(orjson.dumps({**doc, "body": _strip(doc["body"])}))
    assert b"segment" not in zlib.decompress(blob)

    part = PartitionState(0, SETTINGS)
    part.restore(blob)
    state = part.models["m"]
    assert state.segments is not None and state.segments.max_segments == 5 and state.monitor.book.segment is None
    for k, wire in enumerate(_wire(1000, start=500), start=len(plain)):
        part.apply_message(k, orjson.dumps({"events": [wire]}))
    assert state.segments.chosen == [EU, US] and state.predictions == 1500


def test_the_model_file_sets_the_cap_and_a_new_cap_restarts_the_selection() -> None:
    owner = PartitionOwner(SETTINGS, store=None)  # type: ignore[arg-type]
    part = owner.owned[0] = PartitionState(0, SETTINGS, configs=owner.configs, references=owner.references)
    for k, wire in enumerate(_wire(6000, drift_at=3000)):
        part.apply_message(k, json.dumps({"events": [wire]}).encode())
        part.models["m"].alerts(now=0.0)
    state = part.models["m"]
    assert state.segments.chosen == [EU, US] and state.segments.open_alerts() == 1
    owner.apply_configs(1, {"m": ModelConfig(model_id="m", max_segments=1)}, {})
    resolved = [a for a in state.alerts(now=0.0) if a.segment is not None]
    assert [(a.status, a.segment) for a in resolved] == [("resolved", {"region": "us"})]
    assert state.segments.max_segments == 1 and state.segments.chosen is None
    for k, wire in enumerate(_wire(400, start=6000), start=part.next_offset):
        part.apply_message(k, json.dumps({"events": [wire]}).encode())
    assert state.segments.chosen == [EU]
    assert ModelState.create("n", SETTINGS, file=ModelConfig(model_id="n", max_segments=0)).segments.enabled is False


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
    fired = [a for wire in _wire(6000, drift_at=3000) for a in (state.apply(wire), state.alerts(now=0.0))[1]]

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
        "segment": {"region": "eu"}, "events": 0, "monitored": True, "pooled": False, "status": "ok",
        "open_alerts": 0, "metric": "accuracy", "accuracy": 0}
    assert hash_[POOLED_KEY]["pooled"] is True and hash_[POOLED_KEY]["segment"] == POOLED
    assert sum(e["events"] for e in hash_.values()) == 6000 - 300
    open_alerts = [json.loads(v) for v in redis_client.hvals(keys.open_alerts("m"))]
    assert [(a["kind"], a["feature"], a["segment"]) for a in open_alerts if a["segment"]] == [
        ("data_drift", "x", {"region": "us"})]
    assert redis_client.hget(keys.model("m"), "open_alerts") == str(len(open_alerts))
    assert "x [region=us]" in render_status(redis.Redis.from_url(redis_server.url, decode_responses=True), keys, "m")

    state.segments.reconfigure(state.monitor.config, max_segments=1)  # dropped segments leave the hash
    asyncio.run(write(state.alerts(now=0.0)))
    assert redis_client.hlen(keys.segments("m")) == 0
    assert all(json.loads(v)["segment"] is None for v in redis_client.hvals(keys.open_alerts("m")))
    assert state.segments.removed == []
