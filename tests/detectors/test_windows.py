"""RunningMoments, Ring, WindowClock and the rolling sums of RingSum: exact small statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import RingSum
from detectors.windows import Ring, RunningMoments, WindowClock
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, batches, cuts

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
    batched = RunningMoments()
    batched.update_many(np.array(xs))
    assert batched == m


def test_running_moments_constant_stream_has_zero_std() -> None:
    m = RunningMoments()
    for _ in range(10_000):
        m.update(0.1)
    assert m.mean == 0.1
    assert m.std == 0.0


def test_rolling_mean_empty_is_zero() -> None:
    r = RingSum(4)
    assert (r.n, r.mean) == (0, 0.0)


def test_rolling_mean_window_slides() -> None:
    r = RingSum(3)
    seen = []
    for x in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]:
        r.push(x)
        seen.append((r.n, r.mean))
    assert seen == [(1, 1.0), (2, 1.5), (3, 2.0), (3, 3.0), (3, 4.0), (3, 5.0), (3, 6.0)]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.lists(finite, min_size=1, max_size=400))
def test_rolling_mean_equals_mean_of_last_size_values(size: int, xs: list[float]) -> None:
    r = RingSum(size)
    for i, x in enumerate(xs):
        r.push(x)
        window = xs[max(0, i + 1 - size) : i + 1]
        # float cancellation is bounded by the magnitudes that passed through the window in the last two laps
        recent = xs[max(0, i + 1 - 2 * size) : i + 1]
        scale = max(1.0, max(abs(v) for v in recent))
        assert r.n == len(window)
        assert abs(r.mean - math.fsum(window) / len(window)) <= 1e-9 * scale


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=50), st.lists(st.integers(0, 1), min_size=1, max_size=500))
def test_rolling_mean_of_zero_one_losses_is_exact_and_in_unit_interval(size: int, bits: list[int]) -> None:
    r = RingSum(size)
    for i, b in enumerate(bits):
        r.push(float(b))
        window = bits[max(0, i + 1 - size) : i + 1]
        assert r.mean == sum(window) / len(window)
        assert 0.0 <= r.mean <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.lists(st.floats(-1e6, 1e6), max_size=60),
    st.lists(st.lists(st.floats(-1e12, 1e12), max_size=40), max_size=6),
)
def test_extend_leaves_the_state_of_push_many(size: int, before: list[float], batches: list[list[float]]) -> None:
    pushed, extended = RingSum(size), RingSum(size)
    pushed.push_many(np.array(before))
    extended.push_many(np.array(before))
    for batch in batches:
        pushed.push_many(np.array(batch))
        extended.extend(np.array(batch))
        assert encode(extended) == encode(pushed)  # bit for bit: the values, the head, the count, the total


def test_a_ring_allocates_on_the_first_push_and_keeps_the_last_values() -> None:
    ring = Ring(4, "int8")
    assert len(ring.values) == 0 and ring.n == 0 and ring.window().tolist() == []
    ring.push_many(np.arange(1, 11))
    assert ring.values.dtype == np.int8 and ring.n == 4
    assert ring.oldest().tolist() == [7, 8, 9, 10]
    assert sorted(ring.window().tolist()) == [7, 8, 9, 10]


def test_a_ring_created_late_stays_aligned() -> None:
    late = Ring(5, "float64", count=7)  # it missed 7 values: they read as NaN
    assert np.isnan(late.window()).all() and late.n == 5
    late.push_many(np.array([1.0, 2.0]))
    full = Ring(5, "float64")
    full.push_many(np.r_[np.full(7, np.nan), 1.0, 2.0])
    assert encode(late) == encode(full)


@settings(max_examples=80, deadline=None)
@given(
    st.data(),
    st.sampled_from([1, 7, 30, 100, 300]),  # rings that grow in their first lap too
    st.lists(st.integers(-100, 100), min_size=1, max_size=400),
    st.sampled_from(["int8", "int32", "float64"]),
)
def test_a_ring_holds_the_last_size_values_for_any_split(
    data: st.DataObject, size: int, xs: list[int], dtype: str
) -> None:
    values = np.array(xs, dtype=dtype)

    def feed(ring: Ring, part: slice) -> list:
        ring.push_many(values[part])
        return []

    assert_split_invariant(lambda: Ring(size, dtype), feed, len(xs), data.draw(cuts(len(xs))))
    ring = Ring(size, dtype)
    ring.push_many(values)
    assert ring.oldest().tolist() == values[-size:].tolist()
    assert decode(encode(ring), Ring).oldest().tolist() == ring.oldest().tolist()


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([5, 70, 300]), st.integers(0, 400), st.integers(1, 400))
def test_a_ring_created_late_is_the_ring_that_saw_nan_for_any_split(
    data: st.DataObject, size: int, missed: int, n: int
) -> None:
    values = np.arange(n, dtype=np.float64)
    points = data.draw(cuts(n))
    late = Ring(size, "float64", count=missed)
    for part in batches(n, points):
        late.push_many(values[part])
    full = Ring(size, "float64")
    full.push_many(np.r_[np.full(missed, np.nan), values])
    assert encode(late) == encode(full)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([1, 7, 100, 300]), st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=700))
def test_a_ring_sum_is_the_same_for_any_split_one_value_or_many(
    data: st.DataObject, size: int, xs: list[float]
) -> None:
    values = np.array(xs)

    def feed(ring: RingSum, part: slice) -> list:
        if part.stop - part.start == 1:
            ring.push(values[part.start])
        else:
            ring.push_many(values[part])
        return []

    assert_split_invariant(lambda: RingSum(size), feed, len(xs), data.draw(cuts(len(xs))))


def test_window_clock_doc_example() -> None:
    clock = WindowClock(size=100, every=10)
    assert clock.start == 0.0
    for i in range(1000):
        clock.tick(float(i))
    assert clock.start == 890.0
    assert len(clock.marks) == 100 // 10 + 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(0, 10), st.integers(1, 600))
def test_window_clock_start_is_within_every_of_the_window_start(every: int, extra: int, ticks: int) -> None:
    size = every * (1 + extra)  # windows at least one sampling step long
    clock = WindowClock(size=size, every=every)
    for i in range(ticks):
        clock.tick(float(i))
    true_start = max(0, ticks - size)
    assert abs(clock.start - true_start) <= every
    assert clock.start <= true_start  # never after the window's first value
    assert len(clock.marks) <= size // every + 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(1, 300), st.integers(1, 900))
def test_window_clock_start_is_never_after_the_window_start(every: int, size: int, ticks: int) -> None:
    clock = WindowClock(size=size, every=every)
    clock.tick_many(np.arange(ticks, dtype=np.float64))
    true_start = max(0, ticks - size)
    assert true_start - 2 * every < clock.start <= true_start


@settings(max_examples=80, deadline=None)
@given(st.data(), st.integers(1, 20), st.integers(1, 100), st.integers(1, 700))
def test_window_clock_is_the_same_for_any_split(data: st.DataObject, every: int, size: int, n: int) -> None:
    ts = np.cumsum(np.arange(n) % 3 == 0).astype(np.float64)  # ties, as event times have

    def feed(clock: WindowClock, part: slice) -> list:
        clock.tick_many(ts[part])
        return []

    assert_split_invariant(lambda: WindowClock(size, every), feed, n, data.draw(cuts(n)))
