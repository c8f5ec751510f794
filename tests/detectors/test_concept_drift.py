"""ConceptDriftMonitor: DDM (0/1 errors) or ADWIN (absolute errors), gated by the worsening since detection."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Change
from detectors.concept_drift import ConceptDriftMonitor
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times


def spread_errors(percent: float, k: int) -> float:
    """Errors in exactly ``percent`` of events, spread evenly (no bursts)."""
    return float(math.floor((k + 1) * percent / 100) - math.floor(k * percent / 100))


def feed_binary(monitor: ConceptDriftMonitor, percent: float, n: int, start: int) -> list[bool]:
    flags = []
    for k in range(n):
        monitor.update(spread_errors(percent, k), float(start + k))
        flags.append(monitor.active)
    return flags


def feed_regression(monitor: ConceptDriftMonitor, mae: float, n: int, start: int) -> list[bool]:
    flags = []
    for k in range(n):
        monitor.update(mae * (0.5 if k % 2 else 1.5), float(start + k))
        flags.append(monitor.active)
    return flags


def test_detector_names() -> None:
    assert ConceptDriftMonitor(binary=True).detector_name == "ddm"
    assert ConceptDriftMonitor(binary=False).detector_name == "adwin"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_detects_an_error_rate_rise_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = ConceptDriftMonitor(binary=True)
    flags = []
    for i in range(6000):
        monitor.update(float(rng.random() < (0.1 if i < 3000 else 0.3)), float(i))
        flags.append(monitor.active)
    assert not any(flags[:3000])
    assert True in flags[3000:]
    assert flags[3000:].index(True) < 1000
    assert monitor.active


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detects_an_absolute_error_rise_after_the_change_and_not_before(seed: int) -> None:
    rng = random.Random(seed)
    monitor = ConceptDriftMonitor(binary=False)
    flags = []
    for i in range(5000):
        monitor.update(abs(rng.gauss(0.0, 1.0 if i < 3000 else 2.0)), float(i))
        flags.append(monitor.active)
    assert not any(flags[:3000])
    assert any(flags[3000:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_detection_on_stationary_streams(seed: int) -> None:
    rng = random.Random(seed)
    binary, regression = ConceptDriftMonitor(binary=True), ConceptDriftMonitor(binary=False)
    for i in range(20_000):
        binary.update(float(rng.random() < 0.15), float(i))
        regression.update(abs(rng.gauss(0.0, 1.0)), float(i))
        assert not binary.active and not regression.active


def test_no_false_alarm_on_a_stationary_error_rate() -> None:
    rng = random.Random(36)
    monitor = ConceptDriftMonitor(binary=True)
    for i in range(2000):
        monitor.update(float(rng.random() < 0.15), float(i))
        assert not monitor.active, f"fired at event {i}"


def test_an_improvement_is_never_a_problem() -> None:
    monitor = ConceptDriftMonitor(binary=True)
    feed_binary(monitor, 30, 3000, 0)
    assert not any(feed_binary(monitor, 5, 3000, 3000))
    regression = ConceptDriftMonitor(binary=False)
    feed_regression(regression, 2.0, 3000, 0)
    assert not any(feed_regression(regression, 0.5, 3000, 3000))


def test_nothing_is_judged_while_the_baseline_fills() -> None:
    monitor = ConceptDriftMonitor(binary=True, baseline_size=100)
    for i in range(100):
        monitor.update(1.0, float(i))
    assert not monitor.detected and not monitor.active
    assert monitor.baseline.n == 100


def test_hysteresis_binary() -> None:
    monitor = ConceptDriftMonitor(binary=True)
    feed_binary(monitor, 10, 3000, 0)
    assert any(feed_binary(monitor, 40, 1500, 3000))
    stays = feed_binary(monitor, 14, 3000, 4500)  # 4 points worse: < 5, > 2.5
    assert all(stays)
    assert monitor.min_worsening / 2 <= monitor.worsening < monitor.min_worsening
    assert not feed_binary(monitor, 10, 3000, 7500)[-1]

    fresh = ConceptDriftMonitor(binary=True)
    feed_binary(fresh, 10, 3000, 0)
    assert not any(feed_binary(fresh, 14, 4000, 3000))


def test_regression_alert_clears_when_errors_return_to_the_baseline() -> None:
    monitor = ConceptDriftMonitor(binary=False)
    feed_regression(monitor, 1.0, 3000, 0)
    assert any(feed_regression(monitor, 2.0, 2000, 3000))
    assert not feed_regression(monitor, 1.0, 3000, 5000)[-1]
    assert monitor.worsening < monitor.min_worsening / 2


def test_hysteresis_regression() -> None:
    monitor = ConceptDriftMonitor(binary=False)
    feed_regression(monitor, 1.0, 3000, 0)
    assert any(feed_regression(monitor, 2.0, 2000, 3000))
    assert all(feed_regression(monitor, 1.04, 3000, 5000))  # +4 %: < +5 %, > +2.5 %
    assert not feed_regression(monitor, 1.0, 3000, 8000)[-1]

    fresh = ConceptDriftMonitor(binary=False)
    feed_regression(fresh, 1.0, 3000, 0)
    assert not any(feed_regression(fresh, 1.04, 4000, 3000))


def test_an_active_alert_stays_active_while_errors_keep_growing() -> None:
    flapped = []
    for seed in range(10):
        rng = random.Random(seed)
        monitor = ConceptDriftMonitor(binary=False)
        fired = False
        for i in range(12_000):
            sigma = (0.5, 1.0, 2.0, 4.0)[i // 3000]  # the error only ever grows
            label = rng.gauss(0.0, 1.0)
            prediction = label + rng.gauss(0.0, sigma)
            monitor.update(abs(prediction - label), float(i))
            fired = fired or monitor.active
            if fired and not monitor.active:
                flapped.append((seed, i, monitor.since.n))
                break
    assert flapped == []


@pytest.mark.parametrize("percent,severity", [(20, "warning"), (50, "critical")])
def test_severity(percent: int, severity: str) -> None:
    monitor = ConceptDriftMonitor(binary=True)
    feed_binary(monitor, 10, 3000, 0)
    feed_binary(monitor, percent, 2000, 3000)
    assert monitor.active
    assert monitor.evidence().severity == severity
    assert (monitor.worsening >= 4 * monitor.min_worsening) == (severity == "critical")


@pytest.mark.parametrize("binary,detector", [(True, "ddm"), (False, "adwin")])
def test_evidence_fields(binary: bool, detector: str) -> None:
    monitor = ConceptDriftMonitor(binary=binary)
    if binary:
        feed_binary(monitor, 10, 3000, 0)
        feed_binary(monitor, 50, 2000, 3000)
    else:
        feed_regression(monitor, 1.0, 3000, 0)
        feed_regression(monitor, 2.0, 2000, 3000)
    assert monitor.active
    e = monitor.evidence()
    assert (e.kind, e.feature, e.detector) == ("concept_drift", None, detector)
    assert e.threshold == monitor.min_worsening
    assert e.statistic == round(monitor.worsening, 6) >= e.threshold
    assert e.n == monitor.since.n > 0
    assert 3000 <= e.window_start <= e.window_end == 4999.0  # evidence since the detection only
    assert "since the" in e.message


@settings(max_examples=60, deadline=None)
@given(
    st.booleans(), st.one_of(st.just(0.0), st.just(1.0), st.floats(min_value=0.0, max_value=1e6)), st.integers(1, 3000)
)
def test_a_constant_loss_stream_is_never_active(binary: bool, loss: float, n: int) -> None:
    if binary:
        loss = 1.0 if loss >= 0.5 else 0.0
    monitor = ConceptDriftMonitor(binary=binary, baseline_size=100)
    for i in range(n):
        monitor.update(loss, float(i))
        assert not monitor.active


@pytest.mark.parametrize("method", ["ddm", "eddm", "hddm_a", "adwin"])
def test_each_selectable_detector_catches_a_jump_in_the_error_rate(method: str) -> None:
    rng = random.Random(8)
    monitor = ConceptDriftMonitor(binary=True, method=method)
    assert monitor.detector_name == method
    onset = None
    for i in range(8000):
        monitor.update(float(rng.random() < (0.05 if i < 3000 else 0.35)), float(i))
        if monitor.active and onset is None:
            onset = i
    assert onset is not None and 3000 <= onset < 4500
    assert monitor.evidence().detector == method


def test_a_regression_model_always_uses_adwin_and_unknown_methods_are_refused() -> None:
    assert ConceptDriftMonitor(binary=False, method="eddm").detector_name == "adwin"
    with pytest.raises(ValueError, match="choose one of"):
        ConceptDriftMonitor(binary=True, method="page_hinkley")


SETUPS = [(True, "ddm"), (True, "eddm"), (True, "hddm_a"), (True, "adwin"), (False, None)]  # binary, method


def error_stream(binary: bool, n: int, rng: np.random.Generator) -> np.ndarray:
    """Losses whose level moves in 1 to 4 segments (0/1 errors, or absolute errors)."""
    edges = np.sort(rng.integers(0, n + 1, size=rng.integers(0, 4)))
    levels = rng.uniform(0.0, 0.6, size=len(edges) + 1) if binary else rng.uniform(0.2, 3.0, size=len(edges) + 1)
    level = levels[np.searchsorted(edges, np.arange(n), side="right")]
    return (rng.random(n) < level).astype(np.float64) if binary else np.abs(rng.normal(0.0, level))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 2500),
    setup=st.sampled_from(SETUPS),
    baseline=st.sampled_from([30, 300]),
    window=st.sampled_from([50, 400]),
)
def test_any_split_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    setup: tuple[bool, str | None],
    baseline: int,
    window: int,
) -> None:
    binary, method = setup
    rng = np.random.default_rng(seed)
    losses, ts = error_stream(binary, n, rng), times(n, rng)

    def make() -> ConceptDriftMonitor:
        return ConceptDriftMonitor(binary, baseline, min_z=2.0, min_n=20, window=window, method=method)

    assert_split_invariant(make, lambda m, part: m.update_many(losses[part], ts[part]), n, data.draw(cuts(n)))


@pytest.mark.parametrize("binary,method", SETUPS)
def test_conditions_flip_both_ways_in_the_split_streams(binary: bool, method: str | None) -> None:
    """The streams of the split test raise and clear the condition, and end detections (real changes to compare)."""
    seen: set[object] = set()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        losses, ts = error_stream(binary, 2500, rng), times(2500, rng)
        monitor = ConceptDriftMonitor(binary, 30, min_z=2.0, min_n=20, window=50, method=method)
        for k in range(0, 2500, 100):
            seen |= {c.active for c in monitor.update_many(losses[k : k + 100], ts[k : k + 100])}
            seen |= {"detected"} if monitor.detected else {"undetected after a detection"} if monitor.since.n else set()
    assert seen == {True, False, "detected", "undetected after a detection"}


def test_a_batch_gives_the_onsets_of_one_value_at_a_time() -> None:
    rng = random.Random(5)
    losses = [float(rng.random() < (0.1 if i < 3000 else 0.3 if i < 6000 else 0.1)) for i in range(9000)]
    one = ConceptDriftMonitor(binary=True)
    flips = []
    for i, loss in enumerate(losses):
        was = one.active
        one.update(loss, float(i))
        if one.active != was:
            flips.append((i, one.active, one.evidence()))
    batch = ConceptDriftMonitor(binary=True)
    changes = batch.update_many(np.array(losses), np.arange(9000.0))
    assert [(c.index, c.active, c.evidence) for c in changes] == flips
    assert [active for _, active, _ in flips] == [True, False]
    e = changes[0].evidence
    assert 3000 <= e.window_start <= e.window_end == changes[0].index


@pytest.mark.parametrize("binary,method", SETUPS)
def test_a_checkpoint_round_trip_mid_episode_continues_exactly(binary: bool, method: str | None) -> None:
    rng = np.random.default_rng(11)
    n = 6000
    level = np.where(np.arange(n) < 2000, 0.05, 0.35) if binary else np.where(np.arange(n) < 2000, 1.0, 3.0)
    losses = (rng.random(n) < level).astype(np.float64) if binary else np.abs(rng.normal(0.0, level))
    ts = times(n, rng)
    straight = ConceptDriftMonitor(binary, method=method)
    want = straight.update_many(losses, ts)
    cut = want[0].index + 50 if want else 3000  # mid-episode
    interrupted = ConceptDriftMonitor(binary, method=method)
    got = interrupted.update_many(losses[:cut], ts[:cut])
    assert interrupted.active and interrupted.detected
    blob = encode(interrupted)
    restored = decode(blob, ConceptDriftMonitor)
    assert encode(restored) == blob and restored.detector_name == interrupted.detector_name
    got += [Change(c.index + cut, c.active, c.evidence) for c in restored.update_many(losses[cut:], ts[cut:])]
    # river's binary detectors restore exactly; ADWIN replays its last 512 inputs (a shorter window here,
    # which makes the same decisions on this stream)
    assert got == want
    assert encode(restored) == encode(straight)


def test_only_the_running_detector_is_kept_and_it_is_a_field() -> None:
    import dataclasses

    names = {f.name for f in dataclasses.fields(ConceptDriftMonitor)}
    assert {"ddm", "eddm", "hddm_a", "adwin"} <= names and "detector" not in names
    monitor = ConceptDriftMonitor(binary=True, method="eddm")
    assert (monitor.ddm, monitor.hddm_a, monitor.adwin) == (None, None, None) and monitor.eddm is monitor.detector
