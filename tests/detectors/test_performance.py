"""PerformanceMonitor: rolling and cumulative accuracy / MAE from joined pairs."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.performance import CLASSIFICATION, REGRESSION, PerformanceMonitor, infer_task, same_class


@pytest.mark.parametrize("prediction,task", [
    (0.73, REGRESSION), (1.0, REGRESSION), (1, CLASSIFICATION), ("spam", CLASSIFICATION),
    (True, CLASSIFICATION), (False, CLASSIFICATION),
])
def test_infer_task(prediction: object, task: str) -> None:
    assert infer_task(prediction) == task


@pytest.mark.parametrize("prediction,label,same", [
    (1, "1", True), (1, 1.0, True), (1.0, "1", True), (True, "true", True), (False, "False", True),
    ("TRUE", True, True), ("a", "b", False), ("A", "a", False), (1, 2, False), (True, 1, True), (False, "0", True),
    (True, 2, False),
])
def test_same_class_across_json_types(prediction: object, label: object, same: bool) -> None:
    assert same_class(prediction, label) is same


def feed_pattern_classification(monitor: PerformanceMonitor, percent_wrong: int, n: int, start: int) -> list[bool]:
    flags = []
    for k in range(n):
        monitor.update("no" if k % 100 < percent_wrong else "yes", "yes", float(start + k))
        flags.append(monitor.active)
    return flags


def feed_pattern_regression(monitor: PerformanceMonitor, mae: float, n: int, start: int) -> list[bool]:
    flags = []
    for k in range(n):
        monitor.update(10.0 + mae * (0.5 if k % 2 else 1.5), 10.0, float(start + k))
        flags.append(monitor.active)
    return flags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detects_an_accuracy_drop_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = PerformanceMonitor(CLASSIFICATION)
    flags = []
    for i in range(6000):
        right = rng.random() < (0.9 if i < 3000 else 0.7)
        monitor.update(1 if right else 0, 1, float(i))
        flags.append(monitor.active)
    assert not any(flags[:3000])
    assert any(flags[3000:])
    assert monitor.active
    assert monitor.rolling == pytest.approx(0.7, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detects_an_mae_rise_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = PerformanceMonitor(REGRESSION)
    flags = []
    for i in range(6000):
        y = rng.gauss(100.0, 10.0)
        monitor.update(y + rng.gauss(0.0, 1.0 if i < 3000 else 2.0), y, float(i))
        flags.append(monitor.active)
    assert not any(flags[:3000])
    assert any(flags[3000:])
    assert monitor.metric_name == "mae"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_detection_on_stationary_streams(seed: int) -> None:
    rng = random.Random(seed)
    clf, reg = PerformanceMonitor(CLASSIFICATION), PerformanceMonitor(REGRESSION)
    for i in range(20_000):
        clf.update(1 if rng.random() < 0.85 else 0, 1, float(i))
        y = rng.gauss(0.0, 1.0)
        reg.update(y + rng.gauss(0.0, 0.5), y, float(i))
        assert not clf.active and not reg.active
    assert clf.cumulative == pytest.approx(0.85, abs=0.01)
    assert reg.cumulative == pytest.approx(0.5 * math.sqrt(2 / math.pi), rel=0.03)


def test_an_improvement_is_never_a_problem() -> None:
    monitor = PerformanceMonitor(CLASSIFICATION)
    feed_pattern_classification(monitor, 30, 1000, 0)
    assert not any(feed_pattern_classification(monitor, 0, 3000, 1000))


def test_hysteresis_classification() -> None:
    monitor = PerformanceMonitor(CLASSIFICATION)
    feed_pattern_classification(monitor, 5, 1000, 0)
    assert any(feed_pattern_classification(monitor, 35, 1500, 1000))
    stays = feed_pattern_classification(monitor, 12, 2000, 2500)  # 7 points worse: < 10, > 5
    assert all(stays)
    assert monitor.min_drop / 2 <= monitor.degradation < monitor.min_drop
    assert not feed_pattern_classification(monitor, 3, 2000, 4500)[-1]

    fresh = PerformanceMonitor(CLASSIFICATION)
    feed_pattern_classification(fresh, 5, 1000, 0)
    assert not any(feed_pattern_classification(fresh, 12, 3000, 1000))


def test_hysteresis_regression() -> None:
    monitor = PerformanceMonitor(REGRESSION)
    feed_pattern_regression(monitor, 1.0, 1000, 0)
    assert any(feed_pattern_regression(monitor, 2.0, 1500, 1000))
    stays = feed_pattern_regression(monitor, 1.35, 2000, 2500)  # +35 %: below +50 %, above +25 %
    assert all(stays)
    assert not feed_pattern_regression(monitor, 1.1, 2000, 4500)[-1]

    fresh = PerformanceMonitor(REGRESSION)
    feed_pattern_regression(fresh, 1.0, 1000, 0)
    assert not any(feed_pattern_regression(fresh, 1.35, 3000, 1000))


@pytest.mark.parametrize("percent_wrong,severity", [(20, "warning"), (30, "critical")])
def test_severity_classification(percent_wrong: int, severity: str) -> None:
    monitor = PerformanceMonitor(CLASSIFICATION)
    feed_pattern_classification(monitor, 5, 1000, 0)
    feed_pattern_classification(monitor, percent_wrong, 2000, 1000)
    assert monitor.active
    assert monitor.evidence().severity == severity


@pytest.mark.parametrize("mae,severity", [(1.7, "warning"), (2.5, "critical")])
def test_severity_regression(mae: float, severity: str) -> None:
    monitor = PerformanceMonitor(REGRESSION)
    feed_pattern_regression(monitor, 1.0, 1000, 0)
    feed_pattern_regression(monitor, mae, 2000, 1000)
    assert monitor.active
    assert monitor.evidence().severity == severity


@pytest.mark.parametrize("task,detector", [(CLASSIFICATION, "rolling_accuracy"), (REGRESSION, "rolling_mae")])
def test_evidence_fields(task: str, detector: str) -> None:
    monitor = PerformanceMonitor(task)
    feed = feed_pattern_classification if task == CLASSIFICATION else feed_pattern_regression
    arg_before, arg_after = (5, 35) if task == CLASSIFICATION else (1.0, 2.5)
    feed(monitor, arg_before, 1000, 0)  # type: ignore[operator]
    feed(monitor, arg_after, 2000, 1000)  # type: ignore[operator]
    assert monitor.active
    e = monitor.evidence()
    assert (e.kind, e.feature, e.detector) == ("performance", None, detector)
    assert e.statistic == round(monitor.rolling, 6)
    assert e.n == monitor.window
    assert e.window_start <= e.window_end == 2999.0
    assert e.window_start >= 2999 - monitor.window - 16
    if task == CLASSIFICATION:
        assert e.threshold == pytest.approx(0.95 - monitor.min_drop)
        assert e.statistic < e.threshold
    else:
        assert e.threshold == pytest.approx(1.0 * (1 + 5 * monitor.min_drop))
        assert e.statistic > e.threshold


def test_cumulative_is_nan_before_any_pair_and_rolling_tracks_the_window() -> None:
    monitor = PerformanceMonitor(CLASSIFICATION, window=10)
    assert math.isnan(monitor.cumulative)
    for _ in range(10):
        monitor.update("a", "a", 0.0)
    for _ in range(10):
        monitor.update("a", "b", 1.0)
    assert monitor.rolling == 0.0
    assert monitor.cumulative == 0.5


labels = st.sampled_from([0, 1, 2, "a", "b", True, False, 1.0])
small_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=1500), st.integers(min_value=10, max_value=300))
def test_accuracy_stays_in_the_unit_interval(pairs: list[tuple[object, object]], window: int) -> None:
    monitor = PerformanceMonitor(CLASSIFICATION, baseline_size=50, window=window)
    for i, (prediction, label) in enumerate(pairs):
        monitor.update(prediction, label, float(i))
        assert 0.0 <= monitor.rolling <= 1.0
        assert 0.0 <= monitor.cumulative <= 1.0
        assert 0.0 <= monitor.baseline <= 1.0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(small_floats, small_floats), min_size=1, max_size=1500), st.integers(min_value=10, max_value=300))
def test_mae_is_never_negative(pairs: list[tuple[float, float]], window: int) -> None:
    monitor = PerformanceMonitor(REGRESSION, baseline_size=50, window=window)
    for i, (prediction, label) in enumerate(pairs):
        monitor.update(prediction, label, float(i))
        assert monitor.rolling >= 0.0
        assert monitor.cumulative >= 0.0
        assert monitor.baseline >= 0.0


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.tuples(labels, labels), st.tuples(small_floats, small_floats)), st.integers(50, 2500))
def test_a_constant_stream_is_never_active(pair: tuple[object, object], n: int) -> None:
    prediction, label = pair
    task = REGRESSION if isinstance(prediction, float) and isinstance(label, float) else CLASSIFICATION
    monitor = PerformanceMonitor(task, baseline_size=50, window=200)
    for i in range(n):
        monitor.update(prediction, label, float(i))
        assert not monitor.active
