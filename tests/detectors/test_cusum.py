"""MeanShiftCusum and its calibration: silent at the budget, quick on a lasting shift, exact in chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cusum import SHIFTS, MeanShiftCusum
from detectors.cusum_calibration import false_alarm_rate, run_length, thresholds
from detectors.normal_scores import NormalScores, normal_quantile
from detectors.reference import build_profile


def onsets(cusum: MeanShiftCusum, values: np.ndarray, start: int = 0) -> list[int]:
    out, prev = [], cusum.active
    for i, x in enumerate(values.tolist(), start):
        cusum.update(x, float(i))
        if cusum.active and not prev:
            out.append(i)
        prev = cusum.active
    return out


@pytest.mark.parametrize("draw", ["normal", "lognormal", "poisson"])
def test_false_alarms_stay_near_the_budget_whatever_the_shape(draw: str) -> None:
    # A budget of 20,000 values, so 400,000 stationary values should give about 20 alarms.
    rng = np.random.default_rng(11)
    sample = {
        "normal": lambda n: rng.normal(5.0, 2.0, n),
        "lognormal": lambda n: rng.lognormal(0.0, 1.0, n),
        "poisson": lambda n: rng.poisson(3.0, n).astype(float),
    }[draw]
    cusum = MeanShiftCusum("x", build_profile(sample(20_000)), budget_events=20_000, clear_window=50, clear_after=1)
    alarms = len(onsets(cusum, sample(400_000)))
    assert 5 <= alarms <= 45, alarms  # Poisson(20): far outside this band means the calibration is off


def test_a_half_sigma_shift_is_caught_within_a_few_hundred_values_in_either_direction() -> None:
    for sign in (1.0, -1.0):
        rng = np.random.default_rng(3)
        cusum = MeanShiftCusum("x", build_profile(rng.normal(0, 1, 10_000)), budget_events=2e7)
        assert onsets(cusum, rng.normal(0, 1, 5000)) == []
        fired = onsets(cusum, rng.normal(0.5 * sign, 1, 2000), 5000)
        assert fired and fired[0] - 5000 < 400
        assert np.sign(cusum.shift) == sign and 0.25 < abs(cusum.shift) < 1.0
        evidence = cusum.evidence()
        assert evidence.detector == "cusum" and evidence.statistic > evidence.threshold
        assert evidence.window_start >= 4900 and evidence.n <= fired[0] - 4900


def test_the_condition_clears_when_the_level_returns_and_not_while_it_stays_shifted() -> None:
    rng = np.random.default_rng(4)
    cusum = MeanShiftCusum("x", build_profile(rng.normal(0, 1, 10_000)), budget_events=1e7, clear_window=300)
    onsets(cusum, rng.normal(1.0, 1, 500))
    assert cusum.active
    onsets(cusum, rng.normal(1.0, 1, 3000), 500)
    assert cusum.active  # still shifted: never clears
    onsets(cusum, rng.normal(0.0, 1, 1000), 3500)
    assert not cusum.active and cusum.progress < 1.0  # two clean windows, then the sums restarted from zero


def test_an_episode_clears_after_the_level_returns_even_on_a_rough_reference() -> None:
    for seed in range(10):  # 1,000 reference values: their mean is off by about 0.03 std
        rng = np.random.default_rng(100 + seed)
        cusum = MeanShiftCusum("x", build_profile(rng.normal(0, 1, 1000)), budget_events=4e7)
        onsets(cusum, rng.normal(1.0, 1, 1000))
        assert cusum.active
        onsets(cusum, rng.normal(0.0, 1, 3000), 1000)
        assert not cusum.active, seed


@settings(max_examples=30, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(100, 3000))
def test_a_constant_stream_never_alerts(value: float, n: int) -> None:
    cusum = MeanShiftCusum("x", build_profile(np.full(500, value)), budget_events=1e6)
    assert onsets(cusum, np.full(n, value)) == []


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 8, 16, 50]))
def test_chunk_size_changes_nothing_but_when_the_decision_is_seen(seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(rng.normal(0, 1, 2000))
    values = np.concatenate([rng.normal(0, 1, 300), rng.normal(rng.uniform(-1.5, 1.5), 1, 300)])
    one, many = (MeanShiftCusum("x", profile, budget_events=1e5, chunk=c) for c in (1, chunk))
    onsets(one, values)
    onsets(many, values)
    many.update_many(np.asarray(many.buffer), 0.0, 0.0)  # score what is still buffered
    assert (one.active, one.fired_at, one.fired[0], one.fired[3]) == (many.active, many.fired_at, many.fired[0], many.fired[3])
    assert one.fired[1] == pytest.approx(many.fired[1], rel=1e-12)
    if not one.active:
        np.testing.assert_allclose(one.sums, many.sums)


def test_thresholds_grow_with_the_budget_and_for_small_references() -> None:
    k = np.asarray(SHIFTS) / 2
    small, large, strict = thresholds(k, 1e6, 1000), thresholds(k, 1e6, 100_000), thresholds(k, 1e8, 100_000)
    assert (small > large).all() and (strict > large).all()
    for kk, h in zip(k, large):  # each one-sided sum spends its share of the budget
        assert false_alarm_rate(float(kk), float(h), 100_000) == pytest.approx(1 / (1e6 * 2 * len(k)), rel=1e-6)


def test_a_shift_too_small_for_the_reference_error_is_not_tested() -> None:
    h = thresholds(np.asarray(SHIFTS) / 2, 4e7, 1000)
    assert h[0] == np.inf and np.isfinite(h[1:]).all()  # k = 0.05 on a 1,000-value reference: never decides


def test_siegmund_run_length_matches_a_simulation() -> None:
    rng = np.random.default_rng(0)
    k, h, runs = 0.5, 3.0, 2000
    lengths = np.zeros(runs)
    s, alive, t = np.zeros(runs), np.ones(runs, bool), 0
    while alive.any():
        t += 1
        s = np.maximum(s + rng.normal(0, 1, runs) - k, 0)
        done = alive & (s > h)
        lengths[done], alive = t, alive & ~done
    assert lengths.mean() == pytest.approx(float(run_length(np.array([-k]), h)[0]), rel=0.08)


def test_normal_scores_of_values_outside_the_reference_are_finite_extremes() -> None:
    scores = NormalScores(build_profile(np.linspace(0, 1, 1000)))
    z = scores.transform(np.array([-1e300, -5.0, 0.5, 5.0, 1e300]), start=0)
    assert np.isfinite(z).all() and z[0] == z[1] < -3 and abs(z[2]) < 0.01 and z[3] == z[4] > 3
    assert normal_quantile(np.array([0.5]))[0] == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["normal", "poisson", "zeros", "constant"]), st.integers(0, 10**6))
def test_one_value_scores_as_the_column_does_to_the_bit(seed: int, shape: str, start: int) -> None:
    rng = np.random.default_rng(seed)
    reference = {
        "normal": lambda n: rng.normal(0, 1, n), "poisson": lambda n: rng.poisson(3, n).astype(float),
        "zeros": lambda n: np.where(rng.random(n) < 0.4, 0.0, rng.exponential(1, n)),
        "constant": lambda n: np.full(n, 2.5),
    }[shape](int(rng.integers(1, 3000)))
    scores = NormalScores(build_profile(reference))
    x = np.concatenate([rng.choice(reference, 200), rng.normal(reference.mean(), 3 * reference.std() + 1, 200),
                        [reference.min(), reference.max(), -1e300, 1e300]])
    column = scores.transform(x, start)
    assert [scores.score(v, start + i) for i, v in enumerate(x.tolist())] == column.tolist()
