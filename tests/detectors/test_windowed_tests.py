"""Windowed tests against a reference profile: statistics, calibration, detection and false alarms."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts import Evidence
from detectors.calibration import uniform_windows, wasserstein_rows, window_counts
from detectors.reference import CategoricalProfile, NumericProfile, build_profile
from detectors.two_sample import (
    NumericWindowTests,
    counts_at_most,
    ks_rows,
    psi_numeric_rows,
    wasserstein_distance_rows,
)
from detectors.windowed_tests import (
    Calibration,
    WindowedDriftMonitor,
    calibrate,
    category_counts,
    chi_square,
    ks_statistic,
    psi,
    unseen_categories,
    wasserstein,
    window_statistics,
)
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times

Gen = Callable[[np.random.Generator, int], np.ndarray]


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def feed(monitor: WindowedDriftMonitor, values: np.ndarray, start: int = 0) -> list[bool]:
    """Feed values at ts = start.. in one batch and return the active flag after each (from the changes)."""
    flags, on, done = [], monitor.active, 0
    for change in monitor.update_many(values, np.arange(start, start + len(values), dtype=np.float64)):
        flags += [on] * (change.index - done)
        on, done = change.active, change.index
    flags += [on] * (len(values) - done)
    assert on == monitor.active
    return flags


def feed_one_by_one(monitor: WindowedDriftMonitor, values: np.ndarray, start: int = 0) -> list[bool]:
    flags = []
    for i, x in enumerate(values.tolist()):
        monitor.update(x, float(start + i))
        flags.append(monitor.active)
    return flags


# --- statistics -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normal_profile() -> NumericProfile:
    p = build_profile(np.random.default_rng(100).normal(0, 1, 400_000))
    assert isinstance(p, NumericProfile)
    return p


def test_statistics_of_a_window_from_the_reference_are_near_zero(normal_profile: NumericProfile) -> None:
    x = np.random.default_rng(1).normal(0, 1, 100_000)
    assert ks_statistic(x, normal_profile) < 0.01
    assert psi(x, normal_profile) < 0.001
    assert wasserstein(x, normal_profile) < 0.02


def test_statistics_of_a_half_sigma_shift_match_theory(normal_profile: NumericProfile) -> None:
    x = np.random.default_rng(2).normal(0.5, 1, 100_000)
    assert ks_statistic(x, normal_profile) == pytest.approx(phi(0.25) - phi(-0.25), abs=0.01)
    assert wasserstein(x, normal_profile) == pytest.approx(0.5, abs=0.02)
    edges = [-math.inf, *normal_profile.psi_edges, math.inf]
    shares = [phi(b - 0.5) - phi(a - 0.5) for a, b in pairwise(edges)]
    expected = sum((w - 0.1) * math.log(w / 0.1) for w in shares)
    assert psi(x, normal_profile) == pytest.approx(expected, rel=0.05)


def test_statistics_of_a_doubled_spread(normal_profile: NumericProfile) -> None:
    x = np.random.default_rng(3).normal(0, 2, 100_000)
    ks_expected = max(abs(phi(t) - phi(t / 2)) for t in np.linspace(0, 4, 4001))
    assert ks_statistic(x, normal_profile) == pytest.approx(ks_expected, abs=0.01)
    assert wasserstein(x, normal_profile) == pytest.approx(0.78, abs=0.03)  # E|Z| trimmed to [1%, 99%]
    assert psi(x, normal_profile) > 0.4


def test_ks_is_exact_at_atoms() -> None:
    """Integer values sit on atoms of the reference: a window from the same law scores near zero."""
    rng = np.random.default_rng(4)
    p = build_profile(rng.poisson(3, 50_000))
    assert ks_statistic(rng.poisson(3, 50_000), p) < 0.01
    assert ks_statistic(rng.poisson(3, 50_000) + 1, p) > 0.15


def test_categorical_statistics_by_hand() -> None:
    profile = build_profile(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    window = ["a"] * 20 + ["b"] * 30 + ["c"] * 20 + ["z"] * 29 + ["y", None]
    assert category_counts(window, profile).tolist() == [20, 30, 20, 30]  # a, b, c, other
    assert chi_square(window, profile) == pytest.approx(30**2 / 50 + 30**2 / 0.01)  # other: expected 0, floored
    assert psi(window, profile) == pytest.approx((0.2 - 0.5) * math.log(0.4) + (0.3 - 1e-4) * math.log(0.3 / 1e-4))
    assert unseen_categories(window, profile) == 2
    stats = window_statistics(window, profile)
    assert set(stats) == {"chi2", "psi", "unseen"} and stats["unseen"] == 2.0


def test_rare_categories_share_the_other_cell() -> None:
    profile = build_profile(["a"] * 900 + ["b"] * 95 + ["c"] * 5)  # c: 0.5%, expected 2.5 times in 500
    window = ["a"] * 450 + ["b"] * 45 + ["c"] * 5
    assert category_counts(window, profile).tolist() == [450, 45, 5]
    assert chi_square(window, profile) == pytest.approx(2.5**2 / 47.5 + 2.5**2 / 2.5)


def test_an_empty_window_scores_zero() -> None:
    numeric, categorical = build_profile([1.0, 2.0]), build_profile(["a"])
    assert (
        ks_statistic(np.array([]), numeric) == psi(np.array([]), numeric) == wasserstein(np.array([]), numeric) == 0.0
    )
    assert psi([], categorical) == chi_square([None], categorical) == 0.0


# --- calibration -------------------------------------------------------------------------------------------


def test_calibration_is_deterministic_and_grows_with_the_budget(normal_profile: NumericProfile) -> None:
    a = calibrate(normal_profile, 500, 1000, seed=1)
    assert a == calibrate(normal_profile, 500, 1000, seed=1)
    assert a.tests == ("ks", "psi", "wasserstein") and a.alpha == 1e-3 and a.window == 500
    thresholds = [calibrate(normal_profile, 500, b, seed=1).thresholds for b in (50, 1000, 1e5, 1e7)]
    assert np.all(np.diff(np.array(thresholds), axis=0) > 0)
    assert a.threshold("ks") == pytest.approx(math.sqrt(math.log(2 * 1000) / 1000), rel=0.15)  # Kolmogorov's tail


def test_calibration_grows_with_the_reference_sampling_error(normal_profile: NumericProfile) -> None:
    small = dataclasses.replace(normal_profile, sample_size=1000)
    big, little = calibrate(normal_profile, 500, 1e5, seed=3), calibrate(small, 500, 1e5, seed=3)
    grow = 500 / normal_profile.sample_size
    assert little.threshold("psi") / big.threshold("psi") == pytest.approx(1.5 / (1 + grow))
    assert little.threshold("ks") / big.threshold("ks") == pytest.approx(math.sqrt(1.5 / (1 + grow)))


@pytest.mark.parametrize(
    "gen",
    [
        lambda r, n: r.normal(0, 1, n),
        lambda r, n: r.poisson(2, n),
        lambda r, n: r.lognormal(0, 1.5, n),
    ],
)
def test_calibrated_false_alarm_rate_holds_where_it_can_be_measured(gen: Gen) -> None:
    """alpha = 2% per test, with a fresh reference each time: the observed rate stays near or below it."""
    hits, windows = np.zeros(3), 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        profile = build_profile(gen(rng, 10_000))
        assert isinstance(profile, NumericProfile)
        cal = calibrate(profile, 500, 50, seed=seed + 10)
        xs = np.sort(gen(rng, (1000, 500)), axis=1).astype(np.float64)  # 1000 windows, tested at once
        stats = (ks_rows(xs, profile), psi_numeric_rows(xs, profile), wasserstein_distance_rows(xs, profile))
        hits += [np.sum(s >= cal.threshold(t)) for s, t in zip(stats, cal.tests, strict=True)]
        windows += len(xs)
    assert np.all(hits / windows < 0.03), hits / windows


def test_categorical_calibration() -> None:
    profile = build_profile(["a"] * 6000 + ["b"] * 3000 + ["c"] * 1000)
    cal = calibrate(profile, 500, 1e5, seed=0)
    assert isinstance(cal, Calibration) and cal.tests == ("chi2", "psi")
    assert 23 < cal.threshold("chi2") < 40  # chi-square with 2 df: 23 at 1e-5
    noisy = calibrate(dataclasses.replace(profile, sample_size=100), 500, 1e5, seed=0)
    assert noisy.threshold("chi2") == pytest.approx(6 * cal.threshold("chi2") / 1.05)  # a 100-value reference


# --- detection -------------------------------------------------------------------------------------------

CATS = np.array(["a", "b", "c", "d", "e", "f"])
DRIFTS: dict[str, tuple[Gen, Gen]] = {
    "mean +0.5 sigma": (lambda r, n: r.normal(10, 2, n), lambda r, n: r.normal(11, 2, n)),
    "spread x2": (lambda r, n: r.normal(10, 2, n), lambda r, n: r.normal(10, 4, n)),
    "category share 10% -> 30%": (
        lambda r, n: r.choice(CATS, n, p=[0.1, 0.3, 0.2, 0.2, 0.1, 0.1]),
        lambda r, n: r.choice(CATS, n, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1]),
    ),
}
CHANGE = 5250  # mid-window: the window holding the change is half old, half new


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("drift", DRIFTS)
def test_detects_within_2000_events_and_never_before(drift: str, seed: int) -> None:
    before, after = DRIFTS[drift]
    rng = np.random.default_rng(seed)
    monitor = WindowedDriftMonitor("x", build_profile(before(rng, 10_000)), n_features=20, seed=seed)
    assert not any(feed(monitor, before(rng, CHANGE)))
    flags = feed(monitor, after(rng, 4000), start=CHANGE)
    assert True in flags
    delay = flags.index(True) + 1
    assert delay <= 2000
    assert all(flags[delay - 1 :])  # stays found while the drift lasts
    evidence = monitor.evidence()
    assert evidence.kind == "data_drift" and evidence.feature == "x" and evidence.detector.startswith("windowed_")
    assert evidence.statistic >= evidence.threshold and evidence.n == 500


def test_online_reference_then_detection() -> None:
    rng = np.random.default_rng(5)
    monitor = WindowedDriftMonitor("x", n_features=20, reference_size=5000)
    assert not any(feed(monitor, rng.normal(0, 1, 5000)))
    assert monitor.builder is None and isinstance(monitor.profile, NumericProfile) and monitor.windows == 0
    assert not any(feed(monitor, rng.normal(0, 1, 10_000), 5000))
    flags = feed(monitor, rng.normal(0.5, 1, 2000), 15_000)
    assert True in flags and flags.index(True) < 1000


def test_hysteresis_clears_after_two_clean_windows() -> None:
    rng = np.random.default_rng(6)
    monitor = WindowedDriftMonitor(
        "x", build_profile(rng.normal(0, 1, 10_000)), window=200, n_features=20, sequential=False
    )
    assert not any(feed(monitor, rng.normal(0, 1, 1000)))
    assert feed(monitor, rng.normal(3, 1, 200), 1000)[-1]
    assert monitor.evidence().severity == "critical"
    assert all(feed(monitor, rng.normal(0, 1, 200), 1200))  # one clean window: still open
    flags = feed(monitor, rng.normal(0, 1, 200), 1400)
    assert all(flags[:-1]) and not flags[-1]  # cleared at the end of the second clean window
    assert monitor.evidence().window_start == 1400.0 and monitor.evidence().window_end == 1599.0


def test_missing_and_wrong_typed_values_are_skipped() -> None:
    rng = np.random.default_rng(7)
    monitor = WindowedDriftMonitor("x", build_profile(rng.normal(0, 1, 5000)), window=100)
    for i, x in enumerate([None, float("nan"), "7", True, math.inf] * 10 + rng.normal(0, 1, 99).tolist()):
        monitor.update(x, float(i))
    assert (monitor.missing, monitor.fill, monitor.windows) == (50, 99, 0)
    monitor.update(0.0, 200.0)
    assert monitor.windows == 1 and monitor.fill == 0
    evidence = monitor.evidence()
    assert isinstance(evidence, Evidence) and evidence.window_start == 50.0 and evidence.window_end == 200.0


def test_categorical_monitor_reports_unseen_categories() -> None:
    rng = np.random.default_rng(8)
    profile = build_profile(rng.choice(CATS, 10_000).tolist())
    monitor = WindowedDriftMonitor("city", profile, n_features=20)
    feed(monitor, np.array(rng.choice(CATS, 400).tolist() + [f"new{i % 7}" for i in range(100)], dtype=object))
    assert monitor.active and monitor.stats["unseen"] == 7.0
    assert "7 unseen categories" in monitor.evidence().message


def test_monitor_survives_a_checkpoint_mid_window() -> None:
    rng = np.random.default_rng(9)
    for values in (rng.normal(0, 1, 9000), np.array(rng.choice(CATS, 9000).tolist(), dtype=object)):
        whole, part = WindowedDriftMonitor("x", reference_size=3000), WindowedDriftMonitor("x", reference_size=3000)
        feed(whole, values[:1500])
        feed(part, values[:1500])
        part = decode(encode(part), type(part))  # while building the reference
        feed(whole, values[1500:5250])
        feed(part, values[1500:5250])
        part = decode(encode(part), type(part))  # mid-window
        shifted = values[5250:] if values.dtype == object else values[5250:] + 0.5
        assert feed(whole, shifted) == feed(part, shifted)
        assert (part.stats, part.windows, part.active, part.calibration) == (
            whole.stats,
            whole.windows,
            whole.active,
            whole.calibration,
        )


# --- false alarms -------------------------------------------------------------------------------------------

INTEGERS: list[Gen] = [
    lambda r, n: r.poisson(3, n),
    lambda r, n: r.integers(0, 10, n),
    lambda r, n: r.binomial(20, 0.3, n),
    lambda r, n: np.round(r.normal(40, 12, n)),
    lambda r, n: r.geometric(0.2, n),
    lambda r, n: r.poisson(0.3, n),
    lambda r, n: r.integers(0, 2, n),
]


def categorical(f: int) -> Gen:
    labels = np.array([f"c{i}" for i in range(5 + 4 * f)])  # 5 to 81 categories: beyond 50 some pool as "other"
    weights = 1.0 / np.arange(1, len(labels) + 1)
    return lambda r, n: r.choice(labels, n, p=weights / weights.sum())


STATIONARY: dict[str, Callable[[int], Gen]] = {
    "normal": lambda f: lambda r, n: r.normal(f, 1 + f, n),
    "lognormal": lambda f: lambda r, n: r.lognormal(0, 0.25 + 0.1 * f, n),
    "uniform": lambda f: lambda r, n: r.uniform(-f, f + 1, n),
    "integer": lambda f: INTEGERS[f % len(INTEGERS)],
    "categorical": categorical,
}


@pytest.mark.parametrize("family", STATIONARY)
def test_no_false_alarm_on_20k_events_of_20_stationary_features(family: str) -> None:
    alarms = 0
    for f in range(20):
        gen = STATIONARY[family](f)
        rng = np.random.default_rng([f, len(family)])
        monitor = WindowedDriftMonitor(f"x{f}", build_profile(gen(rng, 10_000)), n_features=20, seed=f)
        alarms += any(feed(monitor, gen(rng, 20_000)))
        assert monitor.windows == 40
    assert alarms == 0


# --- properties -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=4), st.booleans()),
    window=st.integers(1, 40),
    reference=st.integers(1, 60),
    extra=st.integers(0, 150),
)
def test_a_constant_stream_never_alerts(value: object, window: int, reference: int, extra: int) -> None:
    monitor = WindowedDriftMonitor("c", window=window, reference_size=reference, draws=100)
    for i in range(reference + extra):
        monitor.update(value, float(i))
        assert not monitor.active
    assert all(math.isfinite(s) and s >= 0 for s in monitor.stats.values())
    assert all(s == 0 for k, s in monitor.stats.items() if k != "unseen")


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(reference=st.lists(finite, min_size=1, max_size=100), window=st.lists(finite, min_size=1, max_size=100))
def test_numeric_statistics_stay_finite_and_non_negative(reference: list[float], window: list[float]) -> None:
    profile = build_profile(np.array(reference))
    stats = window_statistics(np.array(window), profile)
    assert all(math.isfinite(s) and s >= 0 for s in stats.values()), stats
    assert stats["ks"] <= 1
    cal = calibrate(profile, len(window), 1e6, seed=0, draws=50)
    assert all(math.isfinite(t) and t >= 0 for t in cal.thresholds)


@settings(max_examples=300, deadline=None)
@given(
    reference=st.lists(st.one_of(finite, st.sampled_from([0.0, 1.0, 2.0])), min_size=1, max_size=200),
    window=st.lists(st.one_of(finite, st.sampled_from([0.0, 1.0, 2.0])), min_size=1, max_size=120),
)
def test_a_monitors_tables_give_the_statistics_of_window_statistics_bit_for_bit(
    reference: list[float], window: list[float]
) -> None:
    # any values, ties and atoms included (a shared sample of 0, 1 and 2 makes them): the same floats
    profile = build_profile(np.array(reference))
    assert NumericWindowTests(profile, len(window)).statistics(np.array(window)) == window_statistics(
        np.array(window), profile
    )


@settings(max_examples=100, deadline=None)
@given(
    reference=st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=100),
    window=st.lists(st.one_of(st.sampled_from("abcdxyz"), st.none()), min_size=1, max_size=100),
)
def test_categorical_statistics_stay_finite_and_non_negative(reference: list[str], window: list[str | None]) -> None:
    profile = build_profile(reference)
    assert isinstance(profile, CategoricalProfile)
    stats = window_statistics(window, profile)
    assert all(math.isfinite(s) and s >= 0 for s in stats.values()), stats
    cal = calibrate(profile, max(len(window), 1), 1e6, seed=0, draws=50)
    assert all(math.isfinite(t) and t >= 0 for t in cal.thresholds)


# --- shared calibration ------------------------------------------------------------------------------------


def test_ks_and_psi_are_the_simulation_of_each_feature_and_shared_by_continuous_features_of_one_size() -> None:
    rng = np.random.default_rng(20)
    shapes = [rng.normal(0, 1, 4000), rng.lognormal(0, 2, 4000), rng.uniform(-5, 5, 4000), rng.standard_t(2, 4000)]
    cals = [calibrate(build_profile(x), 400, 1e5, seed=2, draws=500) for x in shapes]
    assert len({c.thresholds[:2] for c in cals}) == 1  # KS and PSI: distribution-free for continuous data
    assert len({round(c.threshold("wasserstein"), 6) for c in cals}) == len(cals)  # Wasserstein: per shape
    u = uniform_windows(400, 500, 2)
    for x, cal in zip(shapes, cals, strict=True):  # what the per-feature simulation of old gives, test by test
        profile = build_profile(x)
        xs = profile.inverse_cdf(u)
        direct = calibrate.__globals__["_tail_quantile"]
        grow = 1 + 400 / profile.sample_size
        assert cal.threshold("ks") == direct(ks_rows(xs, profile), 1e-5, 1.0) * math.sqrt(grow)
        assert cal.threshold("psi") == direct(psi_numeric_rows(xs, profile), 1e-5, 2.0) * grow


@pytest.mark.parametrize(
    "gen",
    [
        lambda r, n: r.normal(0, 1, n),
        lambda r, n: r.lognormal(0, 1.5, n),
        lambda r, n: r.poisson(2, n),
        lambda r, n: r.integers(0, 2, n),
        lambda r, n: np.where(r.random(n) < 0.3, 0.0, r.exponential(1, n)),
    ],
)
def test_wasserstein_rows_bound_the_simulated_windows_and_match_them_closely(gen: Gen) -> None:
    rng = np.random.default_rng(21)
    profile = build_profile(gen(rng, 5000).astype(float))
    assert isinstance(profile, NumericProfile)
    exact = wasserstein_distance_rows(profile.inverse_cdf(uniform_windows(500, 600, 4)), profile)
    fast = wasserstein_rows(profile, 500, 600, 4)
    assert np.all(fast >= exact - 1e-9)  # a window's quantile between two atoms is bounded, never understated
    assert np.mean(fast - exact) <= 0.01 * np.mean(exact) + 1e-12


def test_a_new_model_of_continuous_features_calibrates_from_one_shared_simulation() -> None:
    rng = np.random.default_rng(22)
    monitors = [
        WindowedDriftMonitor(f"x{i}", build_profile(rng.gamma(1 + i, 1, 3000)), n_features=20, draws=300)
        for i in range(20)
    ]
    for monitor in monitors:
        monitor.calibrate_now()
    caches = [calibrate.__globals__[name] for name in ("_counted_null", "_coverage")]
    before = [cache.cache_info() for cache in caches]
    for monitor in monitors:
        monitor.set_budget(2e6)
        monitor.calibrate_now()
    for cache, was in zip(
        caches, before, strict=True
    ):  # KS and PSI, and Wasserstein's coverage: none simulated its own
        now = cache.cache_info()
        assert now.misses == was.misses and now.hits >= was.hits + 20


# --- batches -------------------------------------------------------------------------------------------------


def numeric_stream(rng: np.random.Generator, n: int, shift: float, spread: float) -> np.ndarray:
    """Stationary, then drifted (level and spread), then back; some values are not usable."""
    drifted = (np.arange(n) >= n // 3) & (np.arange(n) < 2 * n // 3)
    x = rng.normal(np.where(drifted, shift, 0.0), np.where(drifted, spread, 1.0))
    x[rng.random(n) < 0.03] = np.nan
    return x


def label_stream(rng: np.random.Generator, n: int) -> np.ndarray:
    drifted = (np.arange(n) >= n // 3) & (np.arange(n) < 2 * n // 3)
    labels = np.where(drifted, rng.choice(list("abcz"), n, p=[0.1, 0.2, 0.3, 0.4]), rng.choice(list("abc"), n))
    out = labels.astype(object)
    out[rng.random(n) < 0.03] = None
    return out


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2500),
    given_profile=st.booleans(),
    window=st.sampled_from([40, 100]),
    shift=st.sampled_from([0.0, 0.8, 2.0]),
    spread=st.sampled_from([1.0, 2.5]),
)
def test_any_split_of_a_numeric_stream_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    given_profile: bool,
    window: int,
    shift: float,
    spread: float,
) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(rng.normal(0, 1, 3000)) if given_profile else None
    x, ts = numeric_stream(rng, n, shift, spread), times(n, rng)

    def make() -> WindowedDriftMonitor:
        return WindowedDriftMonitor(
            "x", profile, window=window, reference_size=300, n_features=2, budget_events=2e3, draws=200, seed=1
        )

    changes = assert_split_invariant(make, lambda m, part: m.update_many(x[part], ts[part]), n, data.draw(cuts(n)))
    assert [active for _, active, _ in changes] == [k % 2 == 0 for k in range(len(changes))]
    assert all(e.window_start <= e.window_end for _, _, e in changes)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2500),
    given_profile=st.booleans(),
    window=st.sampled_from([40, 100]),
    classes=st.booleans(),
)
def test_any_split_of_a_categorical_stream_gives_the_changes_and_state_of_one_value_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    given_profile: bool,
    window: int,
    classes: bool,
) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(rng.choice(list("abc"), 3000).tolist()) if given_profile else None
    labels, ts = label_stream(rng, n), times(n, rng)
    if classes:  # predicted classes: integers and booleans (their labels are str(value)), None where missing
        as_class = {"a": 0, "b": 1, "c": 2, "z": True, None: None if data.draw(st.booleans()) else 0}
        labels = np.array([as_class[v] for v in labels], dtype=object)
        profile = build_profile([0, 1, 2] * 1000) if given_profile else None

    def make() -> WindowedDriftMonitor:
        return WindowedDriftMonitor(
            "city",
            profile,
            window=window,
            reference_size=300,
            n_features=2,
            budget_events=2e3,
            draws=200,
            dtype="categorical",
        )

    changes = assert_split_invariant(make, lambda m, part: m.update_many(labels[part], ts[part]), n, data.draw(cuts(n)))
    assert [active for _, active, _ in changes] == [k % 2 == 0 for k in range(len(changes))]


def test_a_drifting_stream_flips_the_condition_in_the_split_tests() -> None:
    """The property tests above see the condition start and stop (they would prove little on silent streams)."""
    rng = np.random.default_rng(23)
    numeric = WindowedDriftMonitor("x", window=100, reference_size=300, n_features=2, budget_events=2e3, draws=200)
    changes = numeric.update_many(numeric_stream(rng, 2400, 2.0, 1.0), times(2400, rng))
    assert [c.active for c in changes][:2] == [True, False] and changes[0].evidence.detector == "cusum"
    labels = WindowedDriftMonitor("c", window=100, reference_size=300, n_features=2, budget_events=2e3, draws=200)
    changes = labels.update_many(label_stream(rng, 2400), times(2400, rng))
    assert [c.active for c in changes][:2] == [True, False] and changes[0].evidence.detector.startswith("windowed")


def test_values_one_at_a_time_give_the_flags_and_state_of_one_batch() -> None:
    rng = np.random.default_rng(24)
    x = numeric_stream(rng, 6000, 0.6, 1.8)
    x[::97] = 7  # ints, strings and None are values too
    items = x.tolist()
    items[5::211] = ["7"] * len(items[5::211])
    items[9::101] = [None] * len(items[9::101])
    one, batch = (WindowedDriftMonitor("x", window=200, reference_size=1000, n_features=5) for _ in range(2))
    assert feed_one_by_one(one, np.array(items, dtype=object)) == feed(batch, np.array(items, dtype=object))
    assert True in feed_one_by_one(
        WindowedDriftMonitor("x", window=200, reference_size=1000, n_features=5), np.array(items, dtype=object)
    )
    assert encode(one) == encode(batch) and one.missing == batch.missing > 0


# --- checkpoints and memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("numeric", [True, False])
def test_the_monitor_round_trips_through_the_checkpoint_codec_at_every_stage(numeric: bool) -> None:
    rng = np.random.default_rng(25)
    n = 6000
    values = numeric_stream(rng, n, 1.5, 1.0) if numeric else label_stream(rng, n)
    ts = np.arange(n, dtype=np.float64)

    def make() -> WindowedDriftMonitor:
        return WindowedDriftMonitor("x", window=200, reference_size=1000, n_features=5)

    whole = make()
    expected = [(c.index, c.active, c.evidence) for c in whole.update_many(values, ts)]
    assert expected and expected[0][1]
    first_on = expected[0][0]
    for cut in (500, 1000 + 150, first_on + 1, first_on + 250):  # mid-reference, mid-window, active
        part = make()
        got = [(c.index, c.active, c.evidence) for c in part.update_many(values[:cut], ts[:cut])]
        if cut == 500:
            assert part.builder is not None
        if cut > first_on:
            assert part.active and (not numeric or part.cusum is not None)
        part = decode(encode(part), WindowedDriftMonitor)
        got += [(cut + c.index, c.active, c.evidence) for c in part.update_many(values[cut:], ts[cut:])]
        assert got == expected and encode(part) == encode(whole)


def test_a_monitor_allocates_its_window_once_it_has_a_reference() -> None:
    monitor = WindowedDriftMonitor("x", reference_size=5000)
    monitor.update_many(np.random.default_rng(26).normal(0, 1, 100), np.arange(100.0))
    assert monitor.buffer.size == 0 and monitor.cusum is None and monitor.builder is not None
    assert monitor.builder.numbers.size < 200
    monitor.update_many(np.random.default_rng(27).normal(0, 1, 5000), np.arange(100.0, 5100.0))
    assert monitor.builder is None and monitor.buffer.size == monitor.window and monitor.fill == 100
    assert monitor.profile is monitor.numeric and monitor.categorical is None


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(1, 60),
    draws=st.integers(1, 80),
    seed=st.integers(0, 3),
    levels=st.lists(st.floats(0.0, 1.0), max_size=30),
    picks=st.lists(st.tuples(st.integers(0, 79), st.integers(0, 59)), max_size=5),
)
def test_window_counts_are_the_counts_of_each_simulated_window(
    window: int, draws: int, seed: int, levels: list[float], picks: list[tuple[int, int]]
) -> None:
    u = uniform_windows(window, draws, seed)
    exact = [float(u[r % draws, i % window]) for r, i in picks]  # levels that are simulated values themselves
    points = np.array(levels + exact + exact[:1], dtype=np.float64)  # and a repeated one
    assert np.array_equal(window_counts(points, window, draws, seed), counts_at_most(u, points))
