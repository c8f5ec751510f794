"""MissingRateMonitor: rolling missing rate against the baseline rate, with hysteresis."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.missing_rate import MissingRateMonitor
from tests.detectors.batching import assert_split_invariant, cuts, times


def feed_random(monitor: MissingRateMonitor, rng: random.Random, rate: float, n: int, start: int) -> list[bool]:
    flags = []
    for i in range(start, start + n):
        monitor.update(rng.random() < rate, float(i))
        flags.append(monitor.active)
    return flags


def feed_pattern(monitor: MissingRateMonitor, percent: int, n: int, start: int) -> list[bool]:
    """Missing in exactly ``percent`` of every 100 events."""
    flags = []
    for k in range(n):
        monitor.update(k % 100 < percent, float(start + k))
        flags.append(monitor.active)
    return flags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detects_a_jump_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = MissingRateMonitor("income")
    before = feed_random(monitor, rng, 0.02, 3000, 0)
    after = feed_random(monitor, rng, 0.25, 2000, 3000)
    assert not any(before)
    assert True in after
    assert after.index(True) < 500
    assert all(after[after.index(True) :])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_detection_on_a_stationary_stream(seed: int) -> None:
    rng = random.Random(seed)
    monitor = MissingRateMonitor("x")
    assert not any(feed_random(monitor, rng, 0.05, 20_000, 0))
    assert monitor.n == 20_000
    assert 0.03 < monitor.missing / monitor.n < 0.07


def test_fewer_missing_values_is_never_a_problem() -> None:
    monitor = MissingRateMonitor("x")
    feed_pattern(monitor, 30, 1000, 0)
    assert not any(feed_pattern(monitor, 0, 3000, 1000))


def test_nothing_is_judged_while_the_baseline_fills() -> None:
    monitor = MissingRateMonitor("x", baseline_size=100)
    for i in range(100):
        monitor.update(i >= 50, float(i))
    assert not monitor.active
    assert monitor.recent_n == 0
    assert monitor.baseline_rate == 0.5
    assert monitor.rate == 0.5  # the baseline rate while the window is empty


def test_hysteresis_keeps_the_alert_until_the_jump_falls_below_half() -> None:
    monitor = MissingRateMonitor("x")
    feed_pattern(monitor, 2, 1000, 0)
    assert any(feed_pattern(monitor, 30, 1000, 1000))
    stays = feed_pattern(monitor, 10, 2000, 2000)  # jump 0.08: below min_jump 0.10, above half
    assert all(stays)
    assert monitor.rate - monitor.baseline_rate < monitor.min_jump
    cleared = feed_pattern(monitor, 0, 2000, 4000)
    assert not cleared[-1]

    fresh = MissingRateMonitor("x")  # the same 0.08 jump never opens an alert on its own
    feed_pattern(fresh, 2, 1000, 0)
    assert not any(feed_pattern(fresh, 10, 3000, 1000))


@pytest.mark.parametrize("percent,severity", [(15, "warning"), (40, "critical")])
def test_severity_follows_the_jump(percent: int, severity: str) -> None:
    monitor = MissingRateMonitor("x")
    feed_pattern(monitor, 2, 1000, 0)
    feed_pattern(monitor, percent, 1000, 1000)
    assert monitor.active
    assert monitor.evidence().severity == severity


def test_evidence_fields() -> None:
    monitor = MissingRateMonitor("income")
    for k in range(2000):
        monitor.update(k % 100 < (2 if k < 1000 else 40), 1_700_000_000 + k * 2.0)
    assert monitor.active
    e = monitor.evidence()
    assert (e.kind, e.feature, e.detector) == ("data_quality", "income", "missing_rate")
    assert e.statistic == pytest.approx(0.4, abs=0.01)  # over whole blocks of 16: 496 values
    assert e.threshold == pytest.approx(0.02 + monitor.min_jump)
    assert e.n == monitor.window // monitor.check_every * monitor.check_every
    assert e.window_start <= e.window_end == 1_700_000_000 + 1999 * 2.0
    assert e.window_start >= 1_700_000_000 + (2000 - monitor.window - 16) * 2.0
    assert e.message.startswith("income:")


@settings(max_examples=60, deadline=None)
@given(st.booleans(), st.integers(min_value=1, max_value=3000))
def test_a_constant_stream_is_never_active(missing: bool, n: int) -> None:
    monitor = MissingRateMonitor("x")
    for i in range(n):
        monitor.update(missing, float(i))
        assert not monitor.active
    assert monitor.rate == (1.0 if missing else 0.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=2000))
def test_rates_stay_in_the_unit_interval(flags: list[bool]) -> None:
    monitor = MissingRateMonitor("x", baseline_size=50, window=100)
    for i, flag in enumerate(flags):
        monitor.update(flag, float(i))
        assert 0.0 <= monitor.rate <= 1.0
        assert 0.0 <= monitor.baseline_rate <= 1.0
    assert monitor.missing == sum(flags)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 3000),
    check_every=st.sampled_from([1, 3, 16]),
    baseline=st.sampled_from([50, 500]),
    window=st.sampled_from([64, 500]),
)
def test_any_split_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    check_every: int,
    baseline: int,
    window: int,
) -> None:
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) < rng.integers(0, n + 1), rng.uniform(0, 0.2), rng.uniform(0, 0.8))
    flags, ts = rng.random(n) < rate, times(n, rng)

    def make() -> MissingRateMonitor:
        return MissingRateMonitor("x", baseline_size=baseline, window=window, check_every=check_every)

    assert_split_invariant(make, lambda m, part: m.update_many(flags[part], ts[part]), n, data.draw(cuts(n)))


def test_a_monitor_in_its_baseline_keeps_no_window() -> None:
    """A new feature's rates take their baseline first: their window's ring is built only as its first block
    closes, so a new model's features cost and checkpoint little."""
    from streams.codec import decode, encode

    monitor = MissingRateMonitor("x", baseline_size=100, window=480, check_every=16)
    monitor.update_many(np.zeros(100, dtype=bool), np.arange(100.0))
    assert monitor.blocks.size == 0 and monitor.recent_n == 0
    small = len(encode(monitor))
    assert monitor.evidence().window_start == 99.0  # no block yet: the window starts at the latest event
    monitor.update_many(np.ones(40, dtype=bool), np.arange(100.0, 140.0))
    assert monitor.blocks.size == 30 and monitor.recent_n == 32
    assert len(encode(monitor)) > small + 2 * 30 * 8  # the ring and each block's start, as numbers
    back = decode(encode(monitor), MissingRateMonitor)
    assert encode(back) == encode(monitor)
