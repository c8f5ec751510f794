"""PerformanceMonitor: rolling and cumulative accuracy / MAE from joined pairs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Change
from detectors.performance import CLASSIFICATION, REGRESSION, PerformanceMonitor, infer_task, same_class
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times


@pytest.mark.parametrize(
    "prediction,task",
    [
        (0.73, REGRESSION),
        (1.0, REGRESSION),
        (1, CLASSIFICATION),
        ("spam", CLASSIFICATION),
        (True, CLASSIFICATION),
        (False, CLASSIFICATION),
    ],
)
def test_infer_task(prediction: object, task: str) -> None:
    assert infer_task(prediction) == task


@pytest.mark.parametrize(
    "prediction,label,same",
    [
        (1, "1", True),
        (1, 1.0, True),
        (1.0, "1", True),
        (True, "true", True),
        (False, "False", True),
        ("TRUE", True, True),
        ("a", "b", False),
        ("A", "a", False),
        (1, 2, False),
        (True, 1, True),
        (False, "0", True),
        (True, 2, False),
    ],
)
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
@given(
    st.lists(st.tuples(small_floats, small_floats), min_size=1, max_size=1500), st.integers(min_value=10, max_value=300)
)
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


def piecewise(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """A level per value: 1 to 4 segments, each at a level drawn in [low, high)."""
    edges = np.sort(rng.integers(0, n + 1, size=rng.integers(0, 4)))
    levels = rng.uniform(low, high, size=len(edges) + 1)
    return levels[np.searchsorted(edges, np.arange(n), side="right")]


def loss_stream(task: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if task == CLASSIFICATION:
        return (rng.random(n) < piecewise(rng, n, 0.0, 0.6)).astype(np.float64)
    return np.abs(rng.normal(0.0, piecewise(rng, n, 0.2, 3.0)))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 2500),
    task=st.sampled_from([CLASSIFICATION, REGRESSION]),
    check_every=st.sampled_from([1, 3, 16]),
    baseline=st.sampled_from([30, 200]),
    window=st.sampled_from([64, 300]),
)
def test_any_split_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    task: str,
    check_every: int,
    baseline: int,
    window: int,
) -> None:
    rng = np.random.default_rng(seed)
    losses, ts = loss_stream(task, n, rng), times(n, rng)

    def make() -> PerformanceMonitor:
        return PerformanceMonitor(task, baseline_size=baseline, window=window, min_z=2.0, check_every=check_every)

    assert_split_invariant(make, lambda m, part: m.update_many(losses[part], ts[part]), n, data.draw(cuts(n)))


def test_conditions_flip_both_ways_in_the_split_streams() -> None:
    """The streams of the split test raise and clear the condition (so the test compares real changes)."""
    flips = {CLASSIFICATION: set(), REGRESSION: set()}
    for seed in range(40):
        for task in flips:
            rng = np.random.default_rng(seed)
            losses, ts = loss_stream(task, 2500, rng), times(2500, rng)
            monitor = PerformanceMonitor(task, baseline_size=30, window=64, min_z=2.0, check_every=1)
            flips[task] |= {c.active for c in monitor.update_many(losses, ts)}
    assert flips == {CLASSIFICATION: {True, False}, REGRESSION: {True, False}}


def test_a_batch_judges_each_block_as_values_one_at_a_time_do() -> None:
    rng = random.Random(1)
    losses = [float(rng.random() >= (0.9 if i < 3000 else 0.6)) for i in range(6000)]
    one = PerformanceMonitor(CLASSIFICATION)
    onsets = []
    for i, loss in enumerate(losses):
        was = one.active
        one.update(0 if loss else 1, 1, float(i))
        if one.active != was:
            onsets.append(i)
    batch = PerformanceMonitor(CLASSIFICATION)
    changes = batch.update_many(np.array(losses), np.arange(6000.0))
    assert [c.index for c in changes] == onsets and onsets
    assert all((c.index + 1) % batch.check_every == 0 for c in changes)  # decisions at whole blocks
    assert changes[0].evidence.window_start <= changes[0].evidence.window_end == float(changes[0].index)


def test_losses_compare_classes_across_json_types_and_skip_non_numbers() -> None:
    classification = PerformanceMonitor(CLASSIFICATION)
    assert classification.losses([1, True, "true", "a", 2.0], ["1", 1.0, 1, "b", 2]).tolist() == [0, 0, 0, 1, 0]
    regression = PerformanceMonitor(REGRESSION)
    got = regression.losses([1.5, "2", None, 3.0], [1.0, 4.0, 1.0, math.inf]).tolist()
    assert got[:2] == [0.5, 2.0] and all(math.isnan(x) for x in got[2:])
    with pytest.raises(ValueError):
        regression.update_many(np.array([1.0, math.nan]), np.array([0.0, 1.0]))
    assert regression.n == 0


@pytest.mark.parametrize("task", [CLASSIFICATION, REGRESSION])
def test_a_checkpoint_round_trip_mid_stream_continues_exactly(task: str) -> None:
    rng = np.random.default_rng(3)
    losses, ts = loss_stream(task, 4000, rng), times(4000, rng)
    straight, interrupted = PerformanceMonitor(task, min_z=2.0), PerformanceMonitor(task, min_z=2.0)
    want = straight.update_many(losses, ts)
    got = interrupted.update_many(losses[:1700], ts[:1700])
    restored = decode(encode(interrupted), PerformanceMonitor)
    assert encode(restored) == encode(interrupted)
    got += [Change(c.index + 1700, c.active, c.evidence) for c in restored.update_many(losses[1700:], ts[1700:])]
    assert got == want
    assert encode(restored) == encode(straight)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=700), st.integers(1, 60), st.sampled_from([1, 5, 16]))
def test_rolling_is_the_metric_of_the_last_window_pairs_between_decisions(
    wrong: list[bool],
    window: int,
    check_every: int,
) -> None:
    """The ring takes whole blocks; the open block's pairs count in ``rolling`` all the same."""
    monitor = PerformanceMonitor(CLASSIFICATION, baseline_size=20, window=window, check_every=check_every)
    for i, w in enumerate(wrong):
        monitor.update_many(np.array([float(w)]), np.array([float(i)]))
        last = wrong[max(0, i + 1 - window) : i + 1]
        assert monitor.rolling == 1.0 - sum(last) / len(last)
        assert monitor.recent_n == monitor.evidence().n == len(last)
        assert len(monitor.block) == monitor.n % check_every
