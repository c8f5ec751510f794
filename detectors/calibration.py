"""Thresholds for the windowed tests, calibrated by simulation to a false-alarm budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detectors.reference import NumericProfile, build_profile  # noqa: F401 (build_profile: doctest)
from detectors.two_sample import (
    CATEGORICAL_TESTS, NUMERIC_TESTS, Profile, _categorical_rows, _cells, _ks_rows, _psi_numeric_rows,
    _wasserstein_rows,
)

def _tail_quantile(stats: np.ndarray, alpha: float, power: float) -> float:
    """The (1 - alpha) quantile of simulated statistics, past the simulation by an exponential tail.

    The tail is fitted to ``stats ** (1 / power)``: ``power`` 2 puts chi-square-like
    statistics (PSI, chi-square) on the scale of distances (KS, Wasserstein).
    """
    s = np.sort(stats) ** (1.0 / power)
    d = len(s)
    if alpha * d >= 10:
        return float(np.quantile(s, 1.0 - alpha)) ** power
    k = max(d // 20, 10)
    base = s[d - k - 1]
    beta = float(np.mean(s[d - k:] - base))
    return max(float(base) + beta * math.log(k / d / alpha), float(s[-1])) ** power


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-window thresholds of each test, for a false-alarm probability ``alpha`` per test and window.

    >>> import numpy as np
    >>> profile = build_profile(np.random.default_rng(0).normal(0, 1, 10_000))
    >>> cal = calibrate(profile, window=500, windows_budget=120_000, seed=0)
    >>> cal.tests, [round(t, 3) for t in cal.thresholds]
    (('ks', 'psi', 'wasserstein'), [0.132, 0.102, 0.228])
    """

    tests: tuple[str, ...]
    thresholds: tuple[float, ...]
    alpha: float
    window: int
    draws: int

    def threshold(self, test: str) -> float:
        return self.thresholds[self.tests.index(test)]


def calibrate(profile: Profile, window: int, windows_budget: float, seed: int = 0, draws: int = 2000) -> Calibration:
    """Thresholds such that each test fires on a stationary window with probability ``1 / windows_budget``.

    Method: draw ``draws`` windows from the reference itself (inverse-CDF
    sampling from the sketch, atoms included; multinomial over the category
    cells) and compute every statistic. When ``alpha * draws >= 10`` the
    threshold is the empirical ``1 - alpha`` quantile. Below what the
    simulation can resolve, an exponential tail is fitted to the top 5% (GPD
    with shape 0: base + mean excess * log(0.05 / alpha)) of the statistic, or
    of its square root for PSI and chi-square, and the threshold is never below
    the simulated maximum. On those scales the log-tail of every statistic is
    concave (KS and Wasserstein are sub-Gaussian, the root of a chi-square of any
    degrees of freedom too), so the fit overstates the tail: it errs towards
    silence. Finally thresholds grow for the reference's own sampling error, as
    two-sample statistics do: by ``g = 1 + window / sample_size`` for PSI and
    chi-square, by ``sqrt(g)`` for KS and Wasserstein.
    """
    rng = np.random.default_rng(seed)
    alpha = 1.0 / max(windows_budget, 1.0)
    if isinstance(profile, NumericProfile):
        xs = profile.inverse_cdf(np.sort(rng.random((draws, window)), axis=1))
        tests = NUMERIC_TESTS
        stats = dict(zip(tests, (_ks_rows(xs, profile), _psi_numeric_rows(xs, profile), _wasserstein_rows(xs, profile))))
    else:
        probs = _cells(profile, window)[1]
        stats = _categorical_rows(rng.multinomial(window, probs / probs.sum(), size=draws), probs)
        tests = CATEGORICAL_TESTS
    grow = 1.0 + window / max(profile.sample_size, 1)
    power = {t: 2.0 if t in ("psi", "chi2") else 1.0 for t in tests}
    thresholds = tuple(_tail_quantile(stats[t], alpha, power[t]) * grow ** (power[t] / 2) for t in tests)
    return Calibration(tests, thresholds, alpha, window, draws)
