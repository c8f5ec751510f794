"""Thresholds for the windowed tests, calibrated by simulation to a false-alarm budget, and shared.

A threshold is a tail quantile of a test's statistic over windows drawn from
the reference itself (:func:`calibrate`). Simulated per feature, that cost
50-70 ms (over a second for a model of 20 numeric features, minutes for a
worker with 1,000 of them), yet for most features most of it is the same:

- The simulated windows are the same for every feature: ``draws`` sorted
  rows of ``window`` seeded uniforms (:func:`uniform_windows`, one table per
  process, 8 MB at the defaults). A window of the reference is their image
  by the sketch's inverse CDF, which is monotone, so every count a test
  makes (values at most a sketch point, values in a PSI bin) is a count of
  uniforms below that point's *probability level* in the sketch.
- KS (at the sketch points) and PSI (over quantile bins) depend on a window
  only through those counts, so their simulated values depend on the
  reference only through its levels (``cdf_below``, ``cdf_at_most``, the
  bin edges' levels and the bins' shares). For continuous data the levels
  are fixed by the sample size alone (each point is one order statistic):
  every continuous reference of one size gets the same numbers, computed
  once and cached (:func:`_counted_null`). This is not an approximation: the
  numbers are those each feature's own simulation gave.
- Wasserstein-1 depends on the feature's shape (in reference std, a heavy
  tail has a wider null than a normal), so it is computed per feature, but
  cheaply: the sketch's quantile function ``Q`` is piecewise linear and
  monotone, so ``|Q(u) - Q(level)|`` is the sum of each segment's rise times
  the share of the segment between the two, and a window's statistic is
  ``coverage @ rises``. The coverage matrix (draws x segments) depends on
  the levels only, so continuous features of one reference size share it
  (:func:`_coverage`) and each pays one matrix-vector product. A window's
  quantile interpolates two order statistics; taking the interpolation of
  their distances bounds the distance, exactly unless the sketch point lies
  between the two, so the statistic is never understated (thresholds move by
  under 1%, upwards, against the values interpolated).
- Atoms (a value repeated in the reference: integers, zeros) make the levels
  the feature's own: KS and PSI are then simulated for that reference alone,
  Wasserstein as it always was, from the shared draws (still about 40 ms).
- Categorical tests depend on the cell shares: the multinomial simulation
  stays per feature (a few ms), cached by the shares.

None of this loosens the false-alarm control: every threshold is still the
tail quantile, at the feature's own budget, of the statistic's null
distribution for that feature's reference, simulated from the same seeded
draws as before; sharing only stops recomputing identical numbers. (The
simulation error is common to all features, as it already was: each used the
same seed, and for continuous data KS and PSI were the same numbers.) The
caches are bounded: 4 coverage matrices (3.2 MB each at the defaults), 32
sets of KS/PSI and 8 categorical simulations (32 KB each).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import numpy as np

from detectors.reference import (  # noqa: F401 (build_profile: doctest)
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
)
from detectors.two_sample import (
    CAP,
    CATEGORICAL_TESTS,
    NUMERIC_TESTS,
    TRIM,
    categorical_rows,
    category_cells,
    counts_at_most,  # noqa: F401 (window_counts' doctest)
    psi_rows,
)

__all__ = ["Calibration", "calibrate", "prepare_tables", "uniform_windows"]


def _tail_quantile(stats: np.ndarray, alpha: float, power: float) -> float:
    """The (1 - alpha) quantile of simulated statistics, past the simulation by an exponential tail.

    The tail is fitted to ``stats ** (1 / power)``: ``power`` 2 puts chi-square-like
    statistics (PSI, chi-square) on the scale of distances (KS, Wasserstein).
    """
    s = np.sort(stats) ** (1.0 / power)
    d = len(s)
    q: float  # float ** float is Any to typeshed (a negative base gives a complex number); these bases are >= 0
    if alpha * d >= 10:
        q = float(np.quantile(s, 1.0 - alpha)) ** power
        return q
    k = max(d // 20, 10)
    base = s[d - k - 1]
    beta = float(np.mean(s[d - k :] - base))
    q = max(float(base) + beta * math.log(k / d / alpha), float(s[-1])) ** power
    return q


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-window thresholds of each test, for a false-alarm probability ``alpha`` per test and window.

    >>> import numpy as np
    >>> profile = build_profile(np.random.default_rng(0).normal(0, 1, 10_000))
    >>> cal = calibrate(profile, window=500, windows_budget=120_000, seed=0)
    >>> cal.tests, [round(t, 3) for t in cal.thresholds]
    (('ks', 'psi', 'wasserstein'), [0.132, 0.102, 0.229])
    """

    tests: tuple[str, ...]
    thresholds: tuple[float, ...]
    alpha: float
    window: int
    draws: int

    def threshold(self, test: str) -> float:
        return self.thresholds[self.tests.index(test)]


@functools.lru_cache(maxsize=4)
def uniform_windows(window: int, draws: int, seed: int) -> np.ndarray:
    """``draws`` sorted rows of ``window`` uniforms: the simulated windows of every feature (read-only)."""
    u = np.sort(np.random.default_rng(seed).random((draws, window)), axis=1)
    u.setflags(write=False)
    return u


@functools.lru_cache(maxsize=4)
def _merged_windows(window: int, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every simulated uniform in one sorted array, with the row each came from (read-only; 12 MB at the defaults)."""
    u = uniform_windows(window, draws, seed)
    order = np.argsort(u, axis=None, kind="stable")
    merged, rows = u.ravel()[order], (order // window).astype(np.int32)
    merged.setflags(write=False)
    rows.setflags(write=False)
    return merged, rows


def prepare_tables(window: int, draws: int = 2000, seed: int = 0) -> None:
    """Build the tables every calibration of ``window`` shares now (about 0.2 s and 20 MB at the defaults),
    so that the first feature to calibrate does not wait for them.

    >>> prepare_tables(40, draws=10)
    >>> uniform_windows(40, 10, 0).shape
    (10, 40)
    """
    _merged_windows(window, draws, seed)


def window_counts(levels: np.ndarray, window: int, draws: int, seed: int) -> np.ndarray:
    """How many values of each simulated window are at most each level: ``counts_at_most`` of the
    :func:`uniform_windows`, exactly, without a search per window (a few ms instead of 13 at the defaults).

    The uniforms at most a level are a prefix of all of them sorted; a row's count grows, level after
    level (sorted), by its members of the stretch between two levels.

    >>> levels = np.array([0.5, 0.1, 0.9, 0.1])
    >>> bool(np.array_equal(window_counts(levels, 50, 30, 1), counts_at_most(uniform_windows(50, 30, 1), levels)))
    True
    """
    merged, rows = _merged_windows(window, draws, seed)
    order = np.argsort(levels, kind="stable")
    out = np.empty((draws, len(levels)))
    counts = np.zeros(draws, dtype=np.int64)
    start = 0
    for j, end in zip(order.tolist(), np.searchsorted(merged, levels[order], side="right").tolist(), strict=True):
        if end > start:
            counts += np.bincount(rows[start:end], minlength=draws)
            start = end
        out[:, j] = counts
    return out


def _levels(profile: NumericProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sketch's distinct points, their levels (share below, share at most) and the PSI edges' levels.

    An edge is a quantile at a tenth, so it is a sketch point up to rounding; it takes that point's level
    (counts of a continuous sample differ only if a value falls within rounding of it), so that references
    of one size share one set of levels.
    """
    points, first = np.unique(profile.quantiles, return_index=True)
    below, at_most = profile.cdf_below[first], profile.cdf_at_most[first]
    edges = profile.psi_edges
    i = np.clip(np.searchsorted(points, edges, side="right") - 1, 0, len(points) - 1)
    j = np.minimum(i + 1, len(points) - 1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        inside = (edges - points[i]) / (points[j] - points[i]) * (below[j] - at_most[i])
        close = 1e-12 * np.maximum(np.abs(edges), np.finfo(np.float64).tiny)
    at_point = (np.abs(edges - points[i]) <= close) | (j == i)
    at_next = ~at_point & (np.abs(points[j] - edges) <= close)
    levels = np.where(at_point, at_most[i], np.where(at_next, below[j], at_most[i] + np.nan_to_num(inside)))
    return points, below, at_most, levels


def _inner(n_quantiles: int) -> np.ndarray:
    """The sketch points the Wasserstein distance averages over: probabilities within [TRIM, 1 - TRIM]."""
    p = np.linspace(0.0, 1.0, n_quantiles)
    return (p >= TRIM - 1e-9) & (p <= 1.0 - TRIM + 1e-9) if n_quantiles > 2 else np.ones(n_quantiles, dtype=bool)


@functools.lru_cache(maxsize=32)
def _counted_null(key: bytes, sizes: tuple[int, int], window: int, draws: int, seed: int) -> tuple[np.ndarray, ...]:
    """Simulated KS and PSI per window for one set of levels (shared by every reference with those levels)."""
    n_points, n_edges = sizes
    below, at_most, edge_levels, fractions = np.split(np.frombuffer(key), np.cumsum([n_points, n_points, n_edges]))
    u = uniform_windows(window, draws, seed)
    m = u.shape[1]
    atoms = np.flatnonzero(below < at_most)
    counted = window_counts(np.concatenate([at_most, edge_levels, below[atoms]]), window, draws, seed)  # at most
    ks = np.abs(counted[:, :n_points] / m - at_most).max(axis=1)
    if len(atoms):  # at an atom the share below it counts too: values below its lower level
        under = counted[:, n_points + n_edges :]
        rows = np.arange(len(u))[:, None]
        under -= (under > 0) & (u[rows, np.maximum(under, 1).astype(np.int64) - 1] == below[atoms])
        ks = np.maximum(ks, np.abs(under / m - below[atoms]).max(axis=1))
    cumulative = np.column_stack([counted[:, n_points : n_points + n_edges], np.full(len(u), m)])
    psi = psi_rows(np.diff(cumulative, axis=1, prepend=0.0), fractions)
    ks.setflags(write=False)
    psi.setflags(write=False)
    return ks, psi


@functools.lru_cache(maxsize=4)
def _coverage(key: bytes, n_points: int, n_quantiles: int, window: int, draws: int, seed: int) -> np.ndarray:
    """Per window and segment of the sketch, the summed share of the segment between each inner sketch point and
    the window's quantile there: the Wasserstein distance is this times the segments' rises (see below)."""
    below, at_most, ref = np.split(np.frombuffer(key), [n_points, 2 * n_points])
    u = uniform_windows(window, draws, seed)
    m = u.shape[1]
    # A window's quantile at each inner sketch probability interpolates two order statistics,
    # (1 - f) Q(u_lo) + f Q(u_hi); its distance to the sketch point (at level ref) is at most
    # (1 - f) |Q(u_lo) - Q(ref)| + f |Q(u_hi) - Q(ref)|, exactly so unless the point lies between the two
    # (then the bound errs towards silence). Each |Q(u) - Q(ref)| is the rises of the segments between u and
    # ref, each times the share of it covered: in segment coordinates (point i at i, flat across its atom,
    # segment i from i to i + 1) that share is clip(y - i, 0, 1) between the two ends' coordinates.
    h = np.linspace(0.0, 1.0, n_quantiles)[_inner(n_quantiles)] * (m - 1)
    lo = np.floor(h).astype(np.int64)
    f = h - lo
    segments = n_points - 1
    knots, place = np.column_stack([below, at_most]).ravel(), np.repeat(np.arange(n_points, dtype=np.float64), 2)
    at_ref = np.interp(ref, knots, place)
    below_ref = np.clip(at_ref[:, None] - np.arange(segments), 0.0, 1.0)  # each point's share below, per segment
    rows = np.arange(len(u))[:, None] * (segments + 1)
    size = len(u) * (segments + 1)
    coverage = np.zeros((len(u), segments))
    for order, weight in ((u[:, lo], 1.0 - f), (u[:, np.minimum(lo + 1, m - 1)], f)):
        y = np.interp(order, knots, place)
        signed = np.where(y >= at_ref, weight, -weight)  # |G(y) - G(ref)| = sign * (G(y) - G(ref)), G monotone
        whole = np.minimum(y.astype(np.int64), segments)  # segments wholly below y (y >= 0)
        cell = (rows + whole).ravel()
        past = np.bincount(cell, weights=signed.ravel(), minlength=size).reshape(len(u), segments + 1)
        part = np.bincount(cell, weights=(signed * (y - whole)).ravel(), minlength=size).reshape(len(u), segments + 1)
        coverage += np.cumsum(past[:, ::-1], axis=1)[:, ::-1][:, 1:] + part[:, :segments] - signed @ below_ref
    coverage.setflags(write=False)
    return coverage


def _null_stats(profile: NumericProfile, window: int, draws: int, seed: int) -> tuple[np.ndarray, ...]:
    """Simulated KS, PSI and Wasserstein of ``profile``'s windows, shared with references of the same levels."""
    points, below, at_most, edge_levels = _levels(profile)
    key = np.concatenate([below, at_most, edge_levels, profile.psi_fractions]).tobytes()
    ks, psi = _counted_null(key, (len(points), len(edge_levels)), window, draws, seed)
    return ks, psi, wasserstein_rows(profile, window, draws, seed, (points, below, at_most))


def wasserstein_rows(
    profile: NumericProfile,
    window: int,
    draws: int = 2000,
    seed: int = 0,
    levels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The Wasserstein statistic (reference std) of each simulated window of ``profile``.

    Where every sketch point holds at most one sample value (continuous data), it is the shared coverage
    matrix of the reference's levels times the segments' rises; with atoms, each window's quantiles are
    computed from the feature's sketch, as they always were.
    """
    points, below, at_most = levels or _levels(profile)[:3]
    scale = max(profile.std, 1e-9 * abs(profile.mean), 1e-12)
    inner = _inner(len(profile.quantiles))
    if np.max(at_most - below) * profile.sample_size <= 1.0 + 1e-9:
        at = np.searchsorted(points, profile.quantiles[inner])
        ref = (below[at] + at_most[at]) / 2  # inside the point's flat piece, off the steps at its ends
        key = np.concatenate([below, at_most, ref]).tobytes()
        coverage = _coverage(key, len(points), len(profile.quantiles), window, draws, seed)
        with np.errstate(over="ignore"):
            rises = np.minimum(np.diff(points), sys.float_info.max)
        with np.errstate(over="ignore", invalid="ignore"):
            w = (coverage @ rises) / inner.sum() / scale
    else:  # the sketch's order statistics where the distance reads them, as wasserstein_distance_rows does
        u = uniform_windows(window, draws, seed)
        m = u.shape[1]
        h = np.linspace(0.0, 1.0, len(profile.quantiles))[inner] * (m - 1)
        lo = np.floor(h).astype(np.int64)
        frac = h - lo
        a, b = profile.inverse_cdf(u[:, lo]), profile.inverse_cdf(u[:, np.minimum(lo + 1, m - 1)])
        with np.errstate(over="ignore", invalid="ignore"):
            qn = np.where((a == b) | (frac == 0), a, a + (b - a) * frac)
            w = np.mean(np.abs(qn - profile.quantiles[inner]), axis=1) / scale
    capped: np.ndarray = np.minimum(np.nan_to_num(w, nan=CAP, posinf=CAP), CAP)
    return capped


@functools.lru_cache(maxsize=8)
def _categorical_null(shares: bytes, window: int, draws: int, seed: int) -> dict[str, np.ndarray]:
    """Simulated chi-square and PSI for one set of cell shares (the multinomial draws of before, cached)."""
    probs = np.frombuffer(shares, dtype=np.float64)
    rng = np.random.default_rng(seed)
    stats = categorical_rows(rng.multinomial(window, probs / probs.sum(), size=draws), probs)
    for array in stats.values():
        array.setflags(write=False)
    return stats


def calibrate(profile: Profile, window: int, windows_budget: float, seed: int = 0, draws: int = 2000) -> Calibration:
    """Thresholds such that each test fires on a stationary window with probability ``1 / windows_budget``.

    Method: draw ``draws`` windows from the reference itself (inverse-CDF
    sampling from the sketch, atoms included; multinomial over the category
    cells) and compute every statistic (shared across references where it can
    be: see the module's docstring). When ``alpha * draws >= 10`` the
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
    alpha = 1.0 / max(windows_budget, 1.0)
    tests: tuple[str, ...]
    if isinstance(profile, NumericProfile):
        tests = NUMERIC_TESTS
        stats = dict(zip(tests, _null_stats(profile, window, draws, seed), strict=True))
    else:
        probs = category_cells(profile, window)[1]
        stats = _categorical_null(probs.tobytes(), window, draws, seed)
        tests = CATEGORICAL_TESTS
    grow = 1.0 + window / max(profile.sample_size, 1)
    power = {t: 2.0 if t in ("psi", "chi2") else 1.0 for t in tests}
    thresholds = tuple(_tail_quantile(stats[t], alpha, power[t]) * grow ** (power[t] / 2) for t in tests)
    return Calibration(tests, thresholds, alpha, window, draws)
