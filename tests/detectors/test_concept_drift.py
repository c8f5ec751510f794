"""ConceptDriftMonitor: DDM (0/1 errors) or ADWIN (absolute errors), gated by the worsening since detection."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.concept_drift import ConceptDriftMonitor


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
@given(st.booleans(), st.one_of(st.just(0.0), st.just(1.0), st.floats(min_value=0.0, max_value=1e6)), st.integers(1, 3000))
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
