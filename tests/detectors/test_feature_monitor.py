"""Data quality beyond missing values: range, new and vanished features, the predicted-class mix."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import ModelMonitor, MonitorConfig
from detectors.alerts import key_text
from detectors.feature_monitor import FeatureMonitor
from detectors.missing_rate import MissingRateMonitor, TypeChangeMonitor
from detectors.reference import build_profile
from detectors.windowed_tests import WindowedDriftMonitor
from streams.codec import encode
from tests.detectors.batching import batches, cuts


def run(monitor: ModelMonitor, events: list[dict], start: int = 0, prediction=None) -> list[tuple]:
    fired = []
    for i, features in enumerate(events, start):
        monitor.observe_prediction(features, None, float(i), "v1", prediction(i) if prediction else None)
        fired += [
            (i, a.status, a.evidence.kind, a.evidence.feature, a.evidence.detector)
            for a in monitor.alerts(now=float(i))
        ]
    return fired


def normal_events(rng: random.Random, n: int, **extra: object) -> list[dict]:
    return [{"x": rng.gauss(10.0, 2.0), "plan": rng.choice("ab"), **extra} for _ in range(n)]


def test_values_outside_the_reference_range_raise_data_quality() -> None:
    rng = random.Random(1)
    monitor = ModelMonitor("m")
    assert run(monitor, normal_events(rng, 3000)) == []
    x = monitor.features["x"]
    assert x.out_of_range is not None and x.out_of_range.rate < 0.01
    # 25% of values now come in cents instead of dollars: out of range, a data-quality problem
    broken = [{"x": rng.gauss(10.0, 2.0) * (100 if rng.random() < 0.25 else 1), "plan": "a"} for _ in range(1000)]
    fired = run(monitor, broken, 3000)
    firing = {(kind, feature, detector) for _, status, kind, feature, detector in fired if status == "firing"}
    assert ("data_quality", "x", "out_of_range") in firing
    assert x.summary()["out_of_range_rate"] > 0.15


def test_a_feature_that_appears_after_the_schema_settled_is_reported_once_then_monitored() -> None:
    rng = random.Random(2)
    monitor = ModelMonitor("m", MonitorConfig(baseline_events=200))
    assert run(monitor, normal_events(rng, 600)) == []
    fired = run(monitor, normal_events(rng, 400, coupon="SPRING"), 600)
    # noticed at its 10th value (present in every event since: the schema could not have missed it)
    assert [(i, s, d) for i, s, k, f, d in fired if f == "coupon"] == [
        (609, "firing", "new_feature"),
        (799, "resolved", "new_feature"),
    ]
    early = ModelMonitor("m2", MonitorConfig(baseline_events=200))  # present from the first events: the schema
    assert run(early, normal_events(rng, 400, coupon="SPRING")) == []


def test_a_rare_optional_feature_is_not_reported_as_new() -> None:
    rng = random.Random(12)
    monitor = ModelMonitor("m", MonitorConfig(baseline_events=200))
    events = [{"x": rng.gauss(0, 1), **({"promo": "y"} if rng.random() < 0.003 else {})} for _ in range(20_000)]
    assert all(f != "promo" for _, _, _, f, _ in run(monitor, events))  # 0.3%: the first 200 events may well lack it
    assert "promo" in monitor.features and monitor.features["promo"].new is not None


def test_a_feature_of_the_reference_that_never_arrives_is_reported_as_gone() -> None:
    rng = np.random.default_rng(3)
    monitor = ModelMonitor("m")
    monitor.set_reference({"x": build_profile(rng.normal(0, 1, 5000)), "income": build_profile(rng.normal(5, 1, 5000))})
    fired = run(monitor, [{"x": float(v)} for v in rng.normal(0, 1, 600)])
    assert [(s, k, f, d) for _, s, k, f, d in fired] == [("firing", "data_quality", "income", "missing_rate")]
    message = monitor.book.open[key_text(("data_quality", "income", "missing_rate"))].evidence.message
    assert "every one" in message and "disappeared" in message


def test_the_predicted_class_mix_is_compared_with_its_reference() -> None:
    rng = random.Random(4)
    monitor = ModelMonitor("m", MonitorConfig(task="classification"))
    events = normal_events(rng, 6000)
    share = lambda i: 0.1 if i < 3000 else 0.3  # noqa: E731 - the positive class goes from 10% to 30%
    fired = run(monitor, events, prediction=lambda i: "fraud" if rng.random() < share(i) else "ok")
    firing = [(i, k, d) for i, s, k, f, d in fired if s == "firing"]
    assert len(firing) == 1 and firing[0][1:] == ("prediction_drift", "windowed_chi2") and 3000 <= firing[0][0] < 4500
    evidence = monitor.book.open[key_text(("prediction_drift", None, "prediction"))].evidence
    assert evidence.feature is None and evidence.message.startswith("predicted class:")


def test_data_drift_alerts_name_the_top_drifting_features() -> None:
    rng = random.Random(5)
    monitor = ModelMonitor("m")

    def rows(n: int, shift: float) -> list[dict[str, float]]:
        return [{"a": rng.gauss(shift, 1), "b": rng.gauss(0, 1), "c": rng.gauss(shift / 2, 1)} for _ in range(n)]

    run(monitor, rows(2000, 0.0))
    fired = run(monitor, rows(1500, 1.0), 2000)
    assert fired
    alert = monitor.book.open[key_text(("data_drift", "a", "drift"))]
    doc = alert.to_dict()
    assert doc["top_features"][0]["feature"] == "a" and doc["top_features"][0]["score"] >= 1.0
    assert [t["feature"] for t in doc["top_features"]][:2] in (["a", "c"], ["c", "a"])


@settings(max_examples=20, deadline=None)
@given(st.one_of(st.floats(-1e9, 1e9, allow_nan=False), st.text(max_size=5), st.booleans()), st.integers(600, 2500))
def test_a_constant_feature_never_alerts(value: object, n: int) -> None:
    monitor = ModelMonitor("m", MonitorConfig(baseline_events=200))
    assert run(monitor, [{"f": value}] * n) == []


def _feature_streams() -> st.SearchStrategy[list]:
    numbers = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000), st.just(float("nan")))
    labels = st.sampled_from(["a", "b", "c"])
    rare = st.one_of(st.none(), st.booleans(), st.just("7"), st.just(3), st.just(float("inf")))
    return st.one_of(
        st.lists(numbers, min_size=1, max_size=700),
        st.lists(labels, min_size=1, max_size=700),
        st.lists(st.one_of(numbers, labels, rare), min_size=1, max_size=700),
    )


class _GeneralPathOnly(FeatureMonitor):
    def _settling(self, values: list, ts: np.ndarray) -> bool:
        return False


def _feature(cls: type[FeatureMonitor], first: object, baseline: int) -> FeatureMonitor:
    """A feature as a model starts monitoring it: its rates take a baseline, its reference builds."""
    numeric = isinstance(first, (int, float)) and not isinstance(first, bool)
    return cls(
        "x",
        numeric,
        MissingRateMonitor("x", baseline, baseline),
        WindowedDriftMonitor("x", n_features=20, reference_size=300, dtype=None if numeric else "categorical"),
        type_changes=TypeChangeMonitor("x", baseline, baseline),
    )


@settings(max_examples=60, deadline=None)
@given(_feature_streams(), st.sampled_from([20, 200, 500]), st.data())
def test_the_settling_shortcut_leaves_the_state_and_changes_of_the_general_path(
    values: list, baseline: int, data: st.DataObject
) -> None:
    """A new feature's batches take a shortcut while none of its detectors can change (baseline, reference
    building): for any stream and any split, the state and the changes are those of the general path."""
    points = data.draw(cuts(len(values)))
    ts = np.arange(len(values), dtype=np.float64)
    first = next((v for v in values if v is not None), 0.0)
    fed = []
    for cls in (FeatureMonitor, _GeneralPathOnly):
        feature = _feature(cls, first, baseline)
        changes = []
        for part in batches(len(values), points):
            changes += [(part.start + c.index, k, c.active) for k, c in feature.update_many(values[part], ts[part])]
        fed.append((encode(feature), changes))
    assert fed[0] == fed[1]


def test_numpy_numbers_are_numbers_to_every_detector_of_a_feature() -> None:
    # A Python caller may feed numpy scalars: the feature's type, its reference and its windows all take them
    # as numbers (one is_number for all), so none counts as a value of the wrong type.
    rng = np.random.default_rng(3)
    values = [np.int64(v) for v in rng.integers(0, 50, 1500)]
    monitor = FeatureMonitor(
        "age",
        True,
        MissingRateMonitor("age"),
        windowed=WindowedDriftMonitor("age", reference_size=500),
        type_changes=TypeChangeMonitor("age"),
    )
    monitor.update_many(values, np.arange(1500.0))
    assert monitor.type_mismatches == 0
    assert monitor.windowed is not None and monitor.windowed.numeric is not None
    assert monitor.windowed.missing == 0 and monitor.windowed.windows == 2
