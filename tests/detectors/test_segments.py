"""Segment monitors: which segments are chosen, where events go, and what their alerts say."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import AlertBook, Evidence, ModelMonitor, MonitorConfig, alert_id_for
from detectors.alerts import segment_key
from detectors.segments import POOLED, POOLED_KEY, SegmentMonitors

EU, US, AP = {"region": "eu"}, {"region": "us"}, {"region": "ap"}


def _feed(segments: SegmentMonitors, labels: list[dict[str, str] | None]) -> None:
    for i, segment in enumerate(labels):
        segments.observe_prediction(segment, {"x": float(i % 7)}, None, float(i), "v1")


def _region(name: str) -> str:
    return segment_key({"region": name})  # type: ignore[return-value]


def test_the_top_segments_by_volume_are_chosen_up_to_the_cap() -> None:
    segments = SegmentMonitors("m", max_segments=2, selection_events=100, min_events=5)
    _feed(segments, [EU] * 50 + [US] * 30 + [AP] * 20)
    assert segments.chosen == [_region("eu"), _region("us")]
    assert set(segments.monitors) == {_region("eu"), _region("us")}  # the pooled one comes with its first event
    assert [m.segment for m in segments.monitors.values()] == [EU, US]


def test_ties_are_broken_by_key_so_the_choice_is_deterministic() -> None:
    segments = SegmentMonitors("m", max_segments=1, selection_events=40, min_events=1)
    _feed(segments, [US, EU] * 20)
    assert segments.chosen == [_region("eu")]


def test_a_segment_below_the_minimum_sample_is_pooled() -> None:
    segments = SegmentMonitors("m", max_segments=5, selection_events=100, min_events=20)
    _feed(segments, [EU] * 85 + [US] * 15)
    assert segments.chosen == [_region("eu")]
    assert segments.route(US) == POOLED_KEY and segments.route(EU) == _region("eu")


def test_a_segment_is_its_full_label_set() -> None:
    both = {"region": "eu", "channel": "web"}
    segments = SegmentMonitors("m", max_segments=5, selection_events=100, min_events=20)
    _feed(segments, [EU] * 50 + [{"channel": "web", "region": "eu"}] * 50)  # key order does not matter
    assert segments.chosen == [segment_key(both), _region("eu")]
    assert segments.route({"region": "eu", "channel": "app"}) == POOLED_KEY


def test_others_and_later_segments_feed_one_pooled_monitor() -> None:
    segments = SegmentMonitors("m", max_segments=1, selection_events=100, min_events=5)
    _feed(segments, [EU] * 60 + [US] * 40)
    _feed(segments, [EU, US, AP, {"region": "new"}, None, {}])
    assert segments.events == {_region("eu"): 1, POOLED_KEY: 3}  # no segment, or empty: not fed
    pooled = segments.monitors[POOLED_KEY]
    assert pooled.segment == POOLED and pooled.features["x"].missing.n == 3
    summary = segments.summary()
    assert summary[POOLED_KEY] == {
        "segment": POOLED,
        "events": 3,
        "monitored": True,
        "pooled": True,
        "status": "ok",
        "open_alerts": 0,
    }
    assert summary[_region("eu")]["pooled"] is False


def test_events_without_a_segment_are_neither_counted_nor_fed() -> None:
    segments = SegmentMonitors("m", max_segments=2, selection_events=10, min_events=1)
    _feed(segments, [None, {}] * 50)
    assert segments.counted == 0 and segments.chosen is None and not segments.monitors


def test_zero_segments_turns_them_off() -> None:
    segments = SegmentMonitors("m", max_segments=0, selection_events=10, min_events=1)
    _feed(segments, [EU] * 100)
    assert segments.counted == 0 and not segments.monitors and segments.alerts(now=0.0) == []


def test_a_segment_spelled_like_the_pooled_one_is_never_chosen() -> None:
    segments = SegmentMonitors("m", max_segments=5, selection_events=100, min_events=1)
    _feed(segments, [POOLED] * 90 + [EU] * 10)
    assert segments.chosen == [_region("eu")]
    assert segments.route(POOLED) == POOLED_KEY


def test_many_distinct_segments_keep_the_counting_table_bounded() -> None:
    segments = SegmentMonitors("m", max_segments=3, selection_events=20_000, min_events=2_000, table_size=32)
    rng = random.Random(4)
    biggest = 0
    for i in range(20_000):
        label = EU if rng.random() < 0.3 else {"user": str(i)}  # a heavy segment among 14k singletons
        segments.observe_prediction(label, {}, None, float(i), "v1")
        biggest = max(biggest, len(segments.counts))
    assert biggest <= 32 and segments.chosen == [_region("eu")] and segments.counts == {}


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(st.integers(0, 30), min_size=1, max_size=600),
    cap=st.integers(1, 6),
    table=st.integers(1, 12),
    share=st.integers(1, 200),
)
def test_selection_invariants(stream: list[int], cap: int, table: int, share: int) -> None:
    """Bounded table; lower-bound counts within n/(k+1); only segments with min_events; at most the cap."""
    n = len(stream)
    min_events = max(1, min(n, share))
    labels = [{"s": str(v)} for v in stream]
    segments = SegmentMonitors("m", max_segments=cap, selection_events=n, min_events=min_events, table_size=table)
    true = Counter(segment_key(s) for s in labels)
    for i, label in enumerate(labels[:-1]):
        segments.observe_prediction(label, {}, None, float(i), "v1")
        assert len(segments.counts) <= table
        for key, count in segments.counts.items():
            assert true[key] >= count >= Counter(segment_key(s) for s in labels[: i + 1])[key] - (i + 1) / (table + 1)
    segments.observe_prediction(labels[-1], {}, None, float(n), "v1")
    assert segments.chosen is not None and len(segments.chosen) <= cap
    assert all(true[key] >= min_events for key in segments.chosen)
    heavy = [key for key, count in true.items() if count - n / (table + 1) >= min_events]
    possible = [key for key, count in true.items() if count >= min_events]  # estimates never exceed counts
    if len(possible) <= cap:  # no competition for the slots: every segment surely above the minimum is chosen
        assert set(heavy) <= set(segments.chosen)
    again = SegmentMonitors("m", max_segments=cap, selection_events=n, min_events=min_events, table_size=table)
    _feed(again, labels)
    assert again.chosen == segments.chosen


def test_segment_monitors_split_the_false_alarm_budget() -> None:
    segments = SegmentMonitors(
        "m", MonitorConfig(budget_events=1e6), max_segments=5, selection_events=100, min_events=10
    )
    _feed(segments, [EU] * 50 + [US] * 30 + [AP] * 5 + [{"region": "x"}] * 15)
    _feed(segments, [AP, EU, US, {"region": "x"}])
    assert len(segments.chosen or []) == 3 and segments.multiplier == 5  # eu, us, x, the pooled one, the model
    assert {m.config.budget_events for m in segments.monitors.values()} == {5e6}
    segments.reconfigure(MonitorConfig(budget_events=2e6, missing_rate_min_jump=0.3))
    assert {m.config.budget_events for m in segments.monitors.values()} == {1e7}
    assert {m.features["x"].missing.min_jump for m in segments.monitors.values()} == {0.3}


def test_outcomes_feed_the_performance_of_their_segment() -> None:
    segments = SegmentMonitors("m", max_segments=1, selection_events=10, min_events=1)
    segments.observe_outcome(EU, 1, 1, 0.0)  # while selecting: nowhere
    _feed(segments, [EU] * 10)
    for i in range(20):
        segments.observe_outcome(_region("eu"), 1, int(i % 4 != 0), float(i))
        segments.observe_outcome(US, 1, 1, float(i))
    eu, pooled = segments.monitors[_region("eu")], segments.monitors[POOLED_KEY]
    assert eu.performance is not None and eu.performance.n == 20 and pooled.performance.n == 20
    assert segments.summary()[_region("eu")]["accuracy"] == 0.75
    assert segments.summary()[_region("eu")]["metric"] == "accuracy"


def _evidence(feature: str = "x") -> Evidence:
    return Evidence("data_drift", feature, "ks", 0.3, 0.1, 500, 0.0, 10.0, "warning", f"{feature} moved")


def test_segment_alerts_carry_the_segment_and_an_id_of_their_own() -> None:
    model, eu, us = AlertBook("m"), AlertBook("m", segment=EU), AlertBook("m", segment=US)
    fired = [book.change(_evidence(), True, 1.0, "v1", 1.0)[0] for book in (model, eu, us)]
    assert [a.segment for a in fired] == [None, EU, US]
    assert [a.to_dict()["segment"] for a in fired] == [None, EU, US]
    assert len({a.alert_id for a in fired}) == 3
    assert fired[0].alert_id == alert_id_for("m", "data_drift", "x", "ks", 1)  # unchanged without a segment
    assert fired[1].alert_id == alert_id_for("m", "data_drift", "x", "ks", 1, segment={"region": "eu"})
    resolved = eu.change(_evidence(), False, 2.0, "v1", 2.0)[0]
    assert resolved.status == "resolved" and resolved.segment == EU and resolved.alert_id == fired[1].alert_id


def test_a_segment_monitor_alerts_with_its_segment() -> None:
    monitor = ModelMonitor("m", segment=US)
    assert monitor.book.segment == US
    assert ModelMonitor("m").book.segment is None


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["eu", "us"]), st.booleans(), st.floats(0.0, 5.0)), max_size=80))
def test_cooldown_holds_per_segment(steps: list[tuple[str, bool, float]]) -> None:
    """Per (model, kind, feature, detector, segment): a resolve in one segment never holds back another."""
    cooldown = 10.0
    books = {name: AlertBook("m", cooldown_s=cooldown, segment={"region": name}) for name in ("eu", "us")}
    now, resolved_at, fired = 0.0, {}, []
    for name, active, dt in steps:
        now += dt
        was_open = bool(books[name].open)
        for alert in books[name].change(_evidence(), active, now, "v1", now):
            assert alert.segment == {"region": name}
            if alert.status == "firing":
                assert now - resolved_at.get(name, -1e9) >= cooldown
                fired.append(name)
            else:
                resolved_at[name] = now
        if active and not was_open and now - resolved_at.get(name, -1e9) >= cooldown:
            assert books[name].open  # the other segment's cooldown never blocks this one
    ids = [a.alert_id for b in books.values() for a in b.open.values()]
    assert len(ids) == len(set(ids))


def _stream(seed: int, n: int, drift_at: int | None, drifting: str):
    """Three regions (50/30/20%) of three features; ``drifting`` moves x by 1 std at ``drift_at``."""
    rng = random.Random(seed)
    for i in range(n):
        region = rng.choices(["eu", "us", "ap"], [50, 30, 20])[0]
        shift = 1.0 if drift_at is not None and i >= drift_at and region == drifting else 0.0
        features = {"x": rng.gauss(shift, 1.0), "y": rng.lognormvariate(0, 0.5), "plan": rng.choice("abc")}
        yield {"region": region}, features, rng.random(), float(i)


@pytest.mark.parametrize("drifting", ["us", "ap"])
def test_a_drift_in_one_segment_is_caught_there_and_the_others_stay_silent(drifting: str) -> None:
    segments = SegmentMonitors("m", MonitorConfig(), max_segments=5, selection_events=1000, min_events=100)
    fired = []
    for k, (segment, features, score, ts) in enumerate(_stream(3, 20_000, 10_000, drifting)):
        segments.observe_prediction(segment, features, score, ts, "v1", prediction=1)
        if k % 50 == 0:
            fired += [(a.status, a.evidence.kind, a.evidence.feature, a.segment) for a in segments.alerts(ts)]
    assert len(segments.chosen or []) == 3
    assert ("firing", "data_drift", "x", {"region": drifting}) in fired
    assert {f[3]["region"] for f in fired} == {drifting}
    assert {(f[1], f[2]) for f in fired} == {("data_drift", "x")}


def test_stationary_segments_never_alert() -> None:
    segments = SegmentMonitors("m", MonitorConfig(), max_segments=5, selection_events=1000, min_events=100)
    for k, (segment, features, score, ts) in enumerate(_stream(8, 20_000, None, "")):
        segments.observe_prediction(segment, features, score, ts, "v1", prediction=1)
        assert k % 50 or segments.alerts(ts) == []
    assert segments.status() == "ok" and segments.open_alerts() == 0


def test_a_new_cap_restarts_the_selection_and_resolves_open_alerts() -> None:
    segments = SegmentMonitors("m", MonitorConfig(), max_segments=5, selection_events=1000, min_events=100)
    for segment, features, score, ts in _stream(3, 20_000, 10_000, "us"):
        segments.observe_prediction(segment, features, score, ts, "v1")
        segments.alerts(ts)
    assert segments.open_alerts() == 1
    kept = MonitorConfig(missing_rate_min_jump=0.2)
    segments.reconfigure(kept, max_segments=5)  # same cap: the choice stays
    assert len(segments.monitors) == 3 and segments.removed == []
    segments.reconfigure(kept, max_segments=1)
    resolved = segments.alerts(now=30_000.0)
    assert [(a.status, a.segment) for a in resolved] == [("resolved", US)]
    assert sorted(segments.removed) == sorted([_region("eu"), _region("us"), _region("ap")])
    assert segments.chosen is None and segments.monitors == {} and segments.open_alerts() == 0
    _feed(segments, [AP] * 1000)
    assert segments.chosen == [_region("ap")]


def test_calibrations_pass_through_up_to_the_limit() -> None:
    segments = SegmentMonitors(
        "m", MonitorConfig(reference_events=100), max_segments=2, selection_events=10, min_events=1
    )
    _feed(segments, [EU, US] * 5)
    _feed(segments, [EU, US] * 100)  # each segment's reference of x completes
    assert segments.calibrate_pending(1) == 1
    assert segments.calibrate_pending(5) == 1
    assert segments.calibrate_pending(5) == 0


def test_a_change_across_the_whole_model_alerts_at_model_level_not_once_per_segment() -> None:
    rng = random.Random(21)
    model = ModelMonitor("shop")
    segments = SegmentMonitors("shop", MonitorConfig(), max_segments=3, selection_events=600, min_events=50)
    fired: list[tuple] = []
    for i in range(9000):
        region = rng.choice(["eu", "us", "ap"])
        features = {"x": rng.gauss(1.0 if i >= 6000 else 0.0, 1.0)}  # every region shifts at once
        model.observe_prediction(features, None, float(i), "v1")
        segments.observe_prediction({"region": region}, features, None, float(i), "v1")
        fired += [(a.status, a.segment) for a in model.alerts(float(i))]
        fired += [(a.status, a.segment) for a in segments.alerts(float(i), model=model)]
    assert fired[0] == ("firing", None)  # the model, which sees every event, first
    assert len(fired) <= 2  # then at most the first segment to catch up, not all three
