"""MeanShiftCusum and its calibration: silent at the budget, quick on a lasting shift, exact for any batches."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cusum import SHIFTS, MeanShiftCusum
from detectors.cusum_calibration import false_alarm_rate, run_length, thresholds
from detectors.normal_scores import NormalScores, normal_quantile
from detectors.reference import NumericProfile, build_profile
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times


def onsets(cusum: MeanShiftCusum, values: np.ndarray, start: int = 0) -> list[int]:
    """Indices (from ``start``) at which the condition started, feeding the values in one batch."""
    changes = cusum.update_many(values, np.arange(start, start + len(values), dtype=np.float64))
    return [start + c.index for c in changes if c.active]


def onsets_one_by_one(cusum: MeanShiftCusum, values: np.ndarray, start: int = 0) -> list[int]:
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
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 8, 16, 50]))
def test_the_chunk_size_changes_nothing_but_rounding(seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(rng.normal(0, 1, 2000))
    values = np.concatenate([rng.normal(0, 1, 300), rng.normal(rng.uniform(-1.5, 1.5), 1, 300)])
    one, many = (MeanShiftCusum("x", profile, budget_events=1e5, chunk=c) for c in (1, chunk))
    assert onsets(one, values) == onsets(many, values)
    assert (one.active, one.fired_at, one.fired[0], one.fired[3], one.fired_ts) == (
        many.active,
        many.fired_at,
        many.fired[0],
        many.fired[3],
        many.fired_ts,
    )
    assert one.fired[1] == pytest.approx(many.fired[1], rel=1e-12)
    np.testing.assert_allclose(one.sums, many.sums, rtol=1e-12, atol=1e-12)


def reference_run(cusum: MeanShiftCusum, values: np.ndarray) -> tuple[int, int, int, float] | None:
    """The textbook recursion S = max(0, S + z - k), one value and one sum at a time: (index, sum, run start, S)."""
    z = cusum.scores.transform(values, 0).tolist()
    k = [s / 2 for s in SHIFTS] * 2
    sums, starts = [0.0] * len(k), [0] * len(k)
    for i, zi in enumerate(z):
        for r in range(len(k)):
            sums[r] = max(0.0, sums[r] + (zi if r < len(SHIFTS) else -zi) - k[r])
            if sums[r] == 0.0:
                starts[r] = i + 1
        crossed = [r for r in range(len(k)) if sums[r] > cusum.h2[r]]
        if crossed:
            return i, crossed[0], starts[crossed[0]], sums[crossed[0]]
    return None


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 16]))
def test_the_decision_comes_at_the_value_where_the_textbook_recursion_crosses(seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(rng.normal(0, 1, 3000))
    values = np.concatenate([rng.normal(0, 1, 400), rng.normal(rng.choice([-1.0, -0.4, 0.4, 1.0]), 1, 1200)])
    ts = times(len(values), rng) + 1_700_000_000.0
    cusum = MeanShiftCusum("x", profile, budget_events=1e6, chunk=chunk)
    expected = reference_run(cusum, values)
    changes = cusum.update_many(values, ts)
    if expected is None:
        assert changes == []
        return
    index, row, start, total = expected
    assert changes and changes[0].active and changes[0].index == index
    evidence = changes[0].evidence
    assert cusum.fired[0] == row and cusum.fired[3] == evidence.n == index + 1 - start
    assert cusum.fired[1] == pytest.approx(total, rel=1e-9)
    assert evidence.window_start == ts[start] and evidence.window_end == ts[index]  # exact event times


def test_one_value_at_a_time_gives_the_state_of_one_batch() -> None:
    rng = np.random.default_rng(12)
    profile = build_profile(rng.poisson(4, 5000).astype(float))  # atoms: the scores' spread depends on the index
    values = np.concatenate([rng.poisson(4, 700), rng.poisson(5, 700), rng.poisson(4, 1600)]).astype(float)
    one = MeanShiftCusum("x", profile, budget_events=1e5, clear_window=200)
    batch = MeanShiftCusum("x", profile, budget_events=1e5, clear_window=200)
    assert onsets_one_by_one(one, values) == onsets(batch, values) != []
    assert encode(one) == encode(batch)


def drifting(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stationary, then shifted, then back: the condition starts and clears. Some values are not finite."""
    shift = rng.choice([-1.5, -0.6, 0.6, 1.5])
    level = np.where((np.arange(n) > n // 4) & (np.arange(n) < n // 2), shift, 0.0)
    x = rng.normal(level, 1.0)
    x[rng.random(n) < 0.02] = rng.choice([np.nan, np.inf, -np.inf])
    return x


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    chunk=st.sampled_from([1, 5, 16]),
    discrete=st.booleans(),
)
def test_any_split_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    chunk: int,
    discrete: bool,
) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, 2000)
    x = drifting(rng, n)
    if discrete:  # atoms: the scores spread across them by the value's position in the stream
        reference, x = np.round(reference * 2), np.round(x * 2)
    profile, ts = build_profile(reference), times(n, rng)

    def make() -> MeanShiftCusum:
        return MeanShiftCusum("x", profile, budget_events=2e4, chunk=chunk, clear_window=60, clear_after=2)

    changes = assert_split_invariant(make, lambda c, part: c.update_many(x[part], ts[part]), n, data.draw(cuts(n)))
    assert [active for _, active, _ in changes] == [k % 2 == 0 for k in range(len(changes))]  # on, off, on...
    assert all(e.window_start <= e.window_end for _, _, e in changes)


def test_the_state_round_trips_through_the_checkpoint_codec_at_every_stage() -> None:
    rng = np.random.default_rng(13)
    profile = build_profile(rng.normal(0, 1, 5000))
    values = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1, 1, 1000), rng.normal(0, 1, 3000)])
    ts = np.arange(len(values), dtype=np.float64)
    whole = MeanShiftCusum("x", profile, budget_events=1e6, clear_window=300)
    expected = [(c.index, c.active, c.evidence) for c in whole.update_many(values, ts)]
    assert [active for _, active, _ in expected] == [True, False]
    for cut in (500, 1000 + 30, expected[0][0] + 1, expected[0][0] + 700, expected[1][0] + 1):  # running, active, ...
        part = MeanShiftCusum("x", profile, budget_events=1e6, clear_window=300)
        got = [(c.index, c.active, c.evidence) for c in part.update_many(values[:cut], ts[:cut])]
        part = decode(encode(part), MeanShiftCusum)
        got += [(cut + c.index, c.active, c.evidence) for c in part.update_many(values[cut:], ts[cut:])]
        assert got == expected and encode(part) == encode(whole)
        assert part.h is whole.h  # the thresholds are derived (and shared), not checkpointed


def test_a_cusum_keeps_a_small_state() -> None:
    rng = np.random.default_rng(14)
    profile = build_profile(rng.normal(0, 1, 5000))
    assert isinstance(profile, NumericProfile)
    cusums = [MeanShiftCusum("x", profile) for _ in range(200)]
    for cusum in cusums:
        cusum.update_many(rng.normal(0, 1, 100), np.arange(100.0))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    more = [MeanShiftCusum("x", profile) for _ in range(200)]
    for cusum in more:
        cusum.update_many(rng.normal(0, 1, 100), np.arange(100.0))
    size = (tracemalloc.get_traced_memory()[0] - before) / len(more)
    tracemalloc.stop()
    assert size < 3000, size  # the profile, the scores' tables and the thresholds are shared
    assert not hasattr(cusums[0], "chunk_ts") and math.isfinite(cusums[0].progress)


def test_thresholds_grow_with_the_budget_and_for_small_references() -> None:
    k = np.asarray(SHIFTS) / 2
    small, large, strict = thresholds(k, 1e6, 1000), thresholds(k, 1e6, 100_000), thresholds(k, 1e8, 100_000)
    assert (small > large).all() and (strict > large).all()
    for kk, h in zip(k, large, strict=True):  # each one-sided sum spends its share of the budget
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
        "normal": lambda n: rng.normal(0, 1, n),
        "poisson": lambda n: rng.poisson(3, n).astype(float),
        "zeros": lambda n: np.where(rng.random(n) < 0.4, 0.0, rng.exponential(1, n)),
        "constant": lambda n: np.full(n, 2.5),
    }[shape](int(rng.integers(1, 3000)))
    scores = NormalScores(build_profile(reference))
    x = np.concatenate(
        [
            rng.choice(reference, 200),
            rng.normal(reference.mean(), 3 * reference.std() + 1, 200),
            [reference.min(), reference.max(), -1e300, 1e300],
        ]
    )
    column = scores.transform(x, start)
    assert [scores.score(v, start + i) for i, v in enumerate(x.tolist())] == column.tolist()
