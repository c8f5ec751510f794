"""RunningMoments, RollingMean and WindowClock: exact small statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.windows import RollingMean, RunningMoments, WindowClock

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_running_moments_empty_and_single() -> None:
    m = RunningMoments()
    assert (m.n, m.mean, m.std) == (0, 0.0, 0.0)
    m.update(3.5)
    assert (m.n, m.mean, m.std) == (1, 3.5, 0.0)  # sample std needs two values


def test_running_moments_known_values() -> None:
    m = RunningMoments()
    for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]:
        m.update(x)
    assert m.n == 8
    assert m.mean == 5.0
    assert m.std == pytest.approx(math.sqrt(32 / 7))


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300))
def test_running_moments_matches_numpy(xs: list[float]) -> None:
    m = RunningMoments()
    for x in xs:
        m.update(x)
    scale = max(1.0, max(abs(x) for x in xs))
    assert m.n == len(xs)
    assert m.mean == pytest.approx(float(np.mean(xs)), rel=1e-9, abs=1e-9 * scale)
    expected_std = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
    assert m.std == pytest.approx(expected_std, rel=1e-7, abs=1e-7 * scale)


def test_running_moments_constant_stream_has_zero_std() -> None:
    m = RunningMoments()
    for _ in range(10_000):
        m.update(0.1)
    assert m.mean == 0.1
    assert m.std == 0.0


def test_rolling_mean_empty_is_zero() -> None:
    r = RollingMean(size=4)
    assert (r.n, r.mean) == (0, 0.0)


def test_rolling_mean_window_slides() -> None:
    r = RollingMean(size=3)
    seen = []
    for x in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]:
        r.update(x)
        seen.append((r.n, r.mean))
    assert seen == [(1, 1.0), (2, 1.5), (3, 2.0), (3, 3.0), (3, 4.0), (3, 5.0), (3, 6.0)]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.lists(finite, min_size=1, max_size=400))
def test_rolling_mean_equals_mean_of_last_size_values(size: int, xs: list[float]) -> None:
    r = RollingMean(size)
    for i, x in enumerate(xs):
        r.update(x)
        window = xs[max(0, i + 1 - size): i + 1]
        # float cancellation is bounded by the magnitudes that passed through the window in the last two laps
        recent = xs[max(0, i + 1 - 2 * size): i + 1]
        scale = max(1.0, max(abs(v) for v in recent))
        assert r.n == len(window)
        assert abs(r.mean - math.fsum(window) / len(window)) <= 1e-9 * scale


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=50), st.lists(st.integers(0, 1), min_size=1, max_size=500))
def test_rolling_mean_of_zero_one_losses_is_exact_and_in_unit_interval(size: int, bits: list[int]) -> None:
    r = RollingMean(size)
    for i, b in enumerate(bits):
        r.update(float(b))
        window = bits[max(0, i + 1 - size): i + 1]
        assert r.mean == sum(window) / len(window)
        assert 0.0 <= r.mean <= 1.0


def test_window_clock_doc_example() -> None:
    clock = WindowClock(size=100, every=10)
    assert clock.start == 0.0
    for i in range(1000):
        clock.tick(float(i))
    assert clock.start == 890.0
    assert len(clock.marks) <= 100 // 10 + 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(0, 10), st.integers(1, 600))
def test_window_clock_start_is_within_every_of_the_window_start(every: int, extra: int, ticks: int) -> None:
    size = every * (1 + extra)  # windows at least one sampling step long
    clock = WindowClock(size=size, every=every)
    for i in range(ticks):
        clock.tick(float(i))
    true_start = max(0, ticks - size)
    assert abs(clock.start - true_start) <= every
    assert clock.start <= ticks - 1  # never after the newest event
    assert len(clock.marks) <= size // every + 1
