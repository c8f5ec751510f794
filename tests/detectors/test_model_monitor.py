"""ModelMonitor: all the detectors of one model, and the alerts they raise."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.model_monitor import ModelMonitor, MonitorConfig
from detectors.performance import CLASSIFICATION, REGRESSION


def run_shifting_feature(monitor: ModelMonitor, phases: list[tuple[float, int]], seed: int = 11) -> list[tuple]:
    rng = random.Random(seed)
    fired = []
    i = 0
    for mean, n in phases:
        for _ in range(n):
            monitor.observe_prediction({"x": rng.gauss(mean, 1.0), "plan": "pro"}, 0.5, float(i), "v1")
            fired += [(i, a) for a in monitor.alerts(now=float(i))]
            i += 1
    return fired


def test_a_drifting_feature_raises_one_data_drift_alert_after_the_change() -> None:
    monitor = ModelMonitor("churn")
    fired = run_shifting_feature(monitor, [(0.0, 1500), (1.0, 1500)])
    assert len(fired) == 1
    i, alert = fired[0]
    assert 1500 <= i < 1800
    assert (alert.status, alert.evidence.kind, alert.evidence.feature) == ("firing", "data_drift", "x")
    assert (alert.model_id, alert.model_version) == ("churn", "v1")
    assert alert.evidence.window_start <= alert.evidence.window_end == float(i)
    assert monitor.status() == alert.evidence.severity
    assert monitor.book.open


def test_episodes_firing_and_resolved_share_an_id_and_a_new_episode_gets_a_new_one() -> None:
    monitor = ModelMonitor("churn")
    fired = run_shifting_feature(monitor, [(0.0, 1500), (1.0, 1500), (0.0, 3000), (1.0, 1500), (0.0, 1500)])
    statuses = [(a.status, a.evidence.feature) for _, a in fired]
    assert statuses == [("firing", "x"), ("resolved", "x"), ("firing", "x"), ("resolved", "x")]
    ids = [a.alert_id for _, a in fired]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    assert 1500 <= fired[0][0] < fired[1][0] and 6000 <= fired[2][0] < fired[3][0]
    assert monitor.status() == "ok"

    replay = ModelMonitor("churn")  # the same events after a crash give the same ids
    again = run_shifting_feature(replay, [(0.0, 1500), (1.0, 1500), (0.0, 3000), (1.0, 1500), (0.0, 1500)])
    assert [a.alert_id for _, a in again] == ids


@pytest.mark.parametrize("seed", [0, 1])
def test_no_alerts_on_a_stationary_model(seed: int) -> None:
    rng = random.Random(seed)
    monitor = ModelMonitor("m")
    for i in range(20_000):
        features = {"a": rng.gauss(0, 1), "b": rng.choice("xyz"), "c": None if rng.random() < 0.05 else rng.random()}
        monitor.observe_prediction(features, rng.random(), float(i), "v1")
        monitor.observe_outcome(1, 1 if rng.random() < 0.85 else 0, float(i))
        assert monitor.alerts(float(i)) == []
    assert monitor.status() == "ok"


def test_score_drift_and_missing_values_raise_their_own_kinds() -> None:
    rng = random.Random(3)
    monitor = ModelMonitor("m")
    fired = []
    for i in range(4000):
        late = i >= 2000
        income = None if (late and rng.random() < 0.4) else 1.0
        score = min(max(rng.gauss(0.7 if late else 0.3, 0.1), 0.0), 1.0)
        monitor.observe_prediction({"x": rng.gauss(0, 1), "income": income}, score, float(i), "v2")
        fired += [(i, a.status, a.evidence.kind, a.evidence.feature) for a in monitor.alerts(float(i))]
    kinds = {(kind, feature) for _, status, kind, feature in fired if status == "firing"}
    assert kinds == {("prediction_drift", None), ("data_quality", "income")}
    assert all(i >= 2000 for i, *_ in fired)


def test_an_accuracy_drop_raises_performance_and_concept_drift() -> None:
    rng = random.Random(1)
    monitor = ModelMonitor("m")
    fired = []
    for i in range(6000):
        right = rng.random() < (0.9 if i < 3000 else 0.6)
        monitor.observe_outcome("a", "a" if right else "b", float(i))
        fired += [(i, a.status, a.evidence.kind) for a in monitor.alerts(float(i))]
    assert {kind for _, status, kind in fired if status == "firing"} == {"performance", "concept_drift"}
    assert all(i >= 3000 for i, *_ in fired)
    name, value = monitor.metric()  # type: ignore[misc]
    assert name == "accuracy" and value == pytest.approx(0.6, abs=0.05)


@pytest.mark.parametrize(
    "prediction,label,task,metric",
    [
        (0.7, 0.5, REGRESSION, ("mae", 0.2)),
        (3, 3, CLASSIFICATION, ("accuracy", 1.0)),
        ("spam", "ham", CLASSIFICATION, ("accuracy", 0.0)),
        (True, "true", CLASSIFICATION, ("accuracy", 1.0)),
    ],
)
def test_the_task_is_inferred_from_the_first_joined_prediction(prediction, label, task, metric) -> None:
    monitor = ModelMonitor("m")
    assert monitor.metric() is None
    monitor.observe_outcome(prediction, label, 1.0)
    assert monitor.performance is not None and monitor.performance.task == task
    assert monitor.performance.concept.binary == (task == CLASSIFICATION)
    name, value = monitor.metric()  # type: ignore[misc]
    assert name == metric[0] and value == pytest.approx(metric[1])


@pytest.mark.parametrize(
    "task,prediction,label,metric",
    [
        (REGRESSION, 3, 5, ("mae", 2.0)),  # integer predictions of a regression model
        (CLASSIFICATION, 1.0, 1, ("accuracy", 1.0)),  # float class labels of a classifier
    ],
)
def test_the_configured_task_wins_over_inference(task, prediction, label, metric) -> None:
    monitor = ModelMonitor("m", MonitorConfig(task=task))
    monitor.observe_outcome(prediction, label, 1.0)
    assert monitor.performance is not None and monitor.performance.task == task
    assert monitor.metric() == pytest.approx(metric)


def test_a_regression_label_that_is_not_a_number_is_skipped() -> None:
    monitor = ModelMonitor("m")
    monitor.observe_outcome(1.5, 1.0, 1.0)
    monitor.observe_outcome(1.5, "n/a", 2.0)
    assert monitor.performance is not None and monitor.performance.n == 1
    assert monitor.metric() == ("mae", 0.5)


@pytest.mark.parametrize("label", ["NaN", "inf", "1e999"])
def test_a_non_finite_label_string_does_not_poison_the_mae(label: str) -> None:
    monitor = ModelMonitor("m")
    for i in range(10):
        monitor.observe_outcome(1.0, 1.5, float(i))
    monitor.observe_outcome(1.0, label, 10.0)
    assert monitor.performance is not None
    assert math.isfinite(monitor.performance.realized.cumulative)
    assert math.isfinite(monitor.metric()[1])  # type: ignore[index]


def test_type_mismatches_are_counted_and_not_fed_to_drift() -> None:
    monitor = ModelMonitor("m")
    monitor.observe_prediction({"age": 40, "plan": "pro"}, None, 1.0, "")
    monitor.observe_prediction({"age": "forty", "plan": 3}, None, 2.0, "")
    monitor.observe_prediction({"age": True, "plan": False}, None, 3.0, "")  # bool is categorical
    monitor.observe_prediction({"age": 41.5, "plan": "basic"}, None, 4.0, "")
    age, plan = monitor.features["age"], monitor.features["plan"]
    assert (age.numeric, plan.numeric) == (True, False)
    assert age.type_mismatches == 2
    assert plan.type_mismatches == 1
    assert age.windowed is not None and age.windowed.n == 2  # only 40 and 41.5
    assert plan.windowed is not None and plan.windowed.n == 3  # "pro", "basic" and False
    assert age.missing.n == plan.missing.n == 4


def test_null_and_absent_values_count_as_missing() -> None:
    monitor = ModelMonitor("m")
    monitor.observe_prediction({"a": None}, None, 1.0, "")
    assert "a" not in monitor.features  # nothing known about its type yet
    monitor.observe_prediction({"a": 1.0, "b": "x"}, None, 2.0, "")
    monitor.observe_prediction({"a": None}, None, 3.0, "")  # a null, b absent
    monitor.observe_prediction({}, None, 4.0, "")
    a, b = monitor.features["a"], monitor.features["b"]
    assert (a.missing.n, a.missing.missing) == (3, 2)
    assert (b.missing.n, b.missing.missing) == (3, 2)
    summary = a.summary()
    assert summary["type"] == "numeric" and summary["n"] == 3 and summary["missing"] == 2
    assert summary["reference"] == "building" and summary["cusum_progress"] is None
    assert b.summary()["type"] == "categorical" and b.summary()["reference_mean"] is None


def test_max_features_caps_the_monitored_features() -> None:
    monitor = ModelMonitor("m", MonitorConfig(max_features=3))
    for i in range(10):
        monitor.observe_prediction({f"f{k}": float(k) for k in range(5 + i)}, None, float(i), "")
    assert list(monitor.features) == ["f0", "f1", "f2"]
    assert monitor.overflow_feature_values > 0
    assert all(m.missing.n == 10 for m in monitor.features.values())


def test_the_score_is_monitored_only_when_present() -> None:
    monitor = ModelMonitor("m")
    monitor.observe_prediction({"x": 1.0}, None, 1.0, "")
    assert monitor.score is None
    monitor.observe_prediction({"x": 1.0}, 0.4, 2.0, "")
    assert monitor.score is not None and monitor.score.kind == "prediction_drift" and monitor.score.n == 1


feature_values = st.one_of(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.integers(-(10**6), 10**6),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
classes = st.sampled_from([0, 1, "a", True, 2.5])


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=8), feature_values, max_size=5),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
    st.tuples(classes, classes),
    st.integers(min_value=100, max_value=800),
)
def test_a_constant_stream_never_alerts(features: dict, score: float | None, outcome: tuple, n: int) -> None:
    monitor = ModelMonitor("m", MonitorConfig(baseline_events=50, metric_window=100))
    prediction, label = outcome
    for i in range(n):
        monitor.observe_prediction(features, score, float(i), "v")
        monitor.observe_outcome(prediction, label, float(i))
        assert monitor.alerts(float(i)) == []
    assert monitor.status() == "ok"


def test_a_numeric_feature_that_starts_arriving_as_text_raises_a_data_quality_alert() -> None:
    rng = random.Random(5)
    monitor = ModelMonitor("m")
    fired = []
    for i in range(3000):
        amount = rng.gauss(100, 10)
        value = f"{amount:.2f}" if i >= 1500 and rng.random() < 0.3 else amount  # an upstream now sends strings
        monitor.observe_prediction({"amount": value}, None, float(i), "")
        fired += [(i, a) for a in monitor.alerts(now=float(i))]
    kinds = {(a.evidence.kind, a.evidence.feature, a.evidence.detector) for _, a in fired}
    assert kinds == {("data_quality", "amount", "type_change")}
    assert 1500 <= fired[0][0] < 1800
    assert "text instead of numbers" in fired[0][1].evidence.message


def test_a_new_false_alarm_budget_recalibrates_running_detectors() -> None:
    import dataclasses

    rng = random.Random(9)
    monitor = ModelMonitor("m")
    for i in range(1600):
        monitor.observe_prediction({"x": rng.gauss(0, 1)}, None, float(i), "")
    windowed = monitor.features["x"].windowed
    assert windowed is not None and windowed.cusum is not None and windowed.calibration is not None
    before = windowed.cusum.h.copy()
    monitor.reconfigure(dataclasses.replace(monitor.config, budget_events=1e9))
    after = windowed.cusum.h
    assert (after >= before).all() and (after > before).any()  # a larger budget: higher thresholds, at once
    assert windowed.calibration is None and windowed.needs_calibration  # the windowed tests recalibrate next


def test_another_concept_drift_detector_applies_to_a_running_model() -> None:
    import dataclasses

    monitor = ModelMonitor("m")
    for i in range(50):
        monitor.observe_outcome(1, 1, float(i))
    assert monitor.performance is not None and monitor.performance.concept.detector_name == "ddm"
    monitor.reconfigure(dataclasses.replace(monitor.config, concept_drift_detector="hddm_a"))
    assert monitor.performance.concept.detector_name == "hddm_a" and monitor.performance.n == 50
