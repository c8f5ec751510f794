"""Two-sample statistics of a window of values against a reference profile, vectorised with numpy.

KS, PSI and Wasserstein-1 (in reference standard deviations) for numbers;
chi-square and PSI for categories, with unseen categories counted. Each has a
row-wise form (``*_rows``) that scores many windows at once, for calibration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from detectors.reference import CategoricalProfile, NumericProfile, Profile, as_label

EPS = 1e-4  # floor on bin and category shares (PSI, chi-square)
CAP = 1e12  # statistics are capped here so they stay finite
TRIM = 0.01  # the Wasserstein distance leaves out the outer 1% on each side
MIN_EXPECTED = 5.0  # categories expected fewer times per window share the "other" cell
NUMERIC_TESTS = ("ks", "psi", "wasserstein")
CATEGORICAL_TESTS = ("chi2", "psi")


def counts_at_most(xs: np.ndarray, points: np.ndarray, side: str = "right") -> np.ndarray:
    """How many values of each sorted row are at most (``side="left"``: below) each point."""
    out = np.empty((len(xs), len(points)))
    for r, row in enumerate(xs):
        out[r] = row.searchsorted(points, side)
    return out


def psi_rows(counts: np.ndarray, ref: np.ndarray) -> np.ndarray:
    w = np.maximum(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), EPS)
    r = np.maximum(ref, EPS)
    psi: np.ndarray = np.sum((w - r) * np.log(w / r), axis=1)
    return psi


def ks_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    """KS of each sorted row at the sketch points, where the reference CDF is known exactly.

    At an atom (a sketch point the sample holds, ``cdf_below < cdf_at_most``)
    both limits count: the window's share below it against ``cdf_below`` too.
    """
    u, first = np.unique(np.asarray(profile.quantiles), return_index=True)
    cdf_below, cdf_at_most = np.asarray(profile.cdf_below)[first], np.asarray(profile.cdf_at_most)[first]
    atoms = cdf_below < cdf_at_most
    m = xs.shape[1]
    gap: np.ndarray = np.abs(counts_at_most(xs, u) / m - cdf_at_most).max(axis=1)
    if atoms.any():
        gap = np.maximum(gap, np.abs(counts_at_most(xs, u[atoms], side="left") / m - cdf_below[atoms]).max(axis=1))
    return gap


def psi_numeric_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    cumulative = np.column_stack([counts_at_most(xs, np.asarray(profile.psi_edges)), np.full(len(xs), xs.shape[1])])
    return psi_rows(np.diff(cumulative, axis=1, prepend=0.0), np.asarray(profile.psi_fractions))


def wasserstein_distance_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    """Mean |window quantile - sketch quantile| over the sketch points within [TRIM, 1 - TRIM], in reference std."""
    q = np.asarray(profile.quantiles)
    p = np.linspace(0.0, 1.0, len(q))
    inner = (p >= TRIM - 1e-9) & (p <= 1.0 - TRIM + 1e-9) if len(q) > 2 else np.ones(len(q), dtype=bool)
    h = p[inner] * (xs.shape[1] - 1)
    lo = np.floor(h).astype(np.int64)
    frac = h - lo
    a, b = xs[:, lo], xs[:, np.minimum(lo + 1, xs.shape[1] - 1)]
    scale = max(profile.std, 1e-9 * abs(profile.mean), 1e-12)
    with np.errstate(over="ignore", invalid="ignore"):
        qn = np.where((a == b) | (frac == 0), a, a + (b - a) * frac)
        w = np.mean(np.abs(qn - q[inner]), axis=1) / scale
    capped: np.ndarray = np.minimum(np.nan_to_num(w, nan=CAP, posinf=CAP), CAP)
    return capped


class NumericWindowTests:
    """KS, PSI and Wasserstein of full windows of ``m`` values against one profile, its tables computed once.

    The same arithmetic as :func:`window_statistics` (the same numbers, bit for
    bit), without rebuilding the profile's arrays at every window: a monitor
    keeps one per reference.

    >>> from detectors.reference import build_profile
    >>> rng = np.random.default_rng(3)
    >>> profile = build_profile(rng.normal(0, 1, 5000))
    >>> window = rng.normal(0.5, 1, 500)
    >>> NumericWindowTests(profile, 500).statistics(window) == window_statistics(window, profile)
    True
    """

    def __init__(self, profile: NumericProfile, m: int) -> None:
        self.m = m
        u, first = np.unique(np.asarray(profile.quantiles), return_index=True)
        self.points, self.cdf_at_most = u, np.asarray(profile.cdf_at_most)[first]
        atoms = np.asarray(profile.cdf_below)[first] < self.cdf_at_most
        self.atoms = u[atoms] if atoms.any() else None
        self.cdf_below_atoms = np.asarray(profile.cdf_below)[first][atoms]
        self.edges = np.asarray(profile.psi_edges)
        self.fractions = np.maximum(np.asarray(profile.psi_fractions), EPS)
        q = np.asarray(profile.quantiles)
        p = np.linspace(0.0, 1.0, len(q))
        inner = (p >= TRIM - 1e-9) & (p <= 1.0 - TRIM + 1e-9) if len(q) > 2 else np.ones(len(q), dtype=bool)
        h = p[inner] * (m - 1)
        self.lo = np.floor(h).astype(np.int64)
        self.hi = np.minimum(self.lo + 1, m - 1)
        self.frac, self.inner_q = h - self.lo, q[inner]
        self.scale = max(profile.std, 1e-9 * abs(profile.mean), 1e-12)

    def statistics(self, window: np.ndarray) -> dict[str, float]:
        """The statistics of a window of ``m`` finite values (any order)."""
        xs = np.sort(window)
        m = self.m
        ks = float(np.abs(xs.searchsorted(self.points, "right") / m - self.cdf_at_most).max())
        if self.atoms is not None:
            ks = max(ks, float(np.abs(xs.searchsorted(self.atoms, "left") / m - self.cdf_below_atoms).max()))
        cumulative = np.append(xs.searchsorted(self.edges, "right").astype(np.float64), float(m))
        w = np.maximum(np.diff(cumulative, prepend=0.0) / m, EPS)
        psi_value = float(np.sum((w - self.fractions) * np.log(w / self.fractions)))
        a, b = xs[self.lo], xs[self.hi]
        with np.errstate(over="ignore", invalid="ignore"):
            qn = np.where((a == b) | (self.frac == 0), a, a + (b - a) * self.frac)
            distance = float(np.mean(np.abs(qn - self.inner_q)) / self.scale)
        distance = CAP if not math.isfinite(distance) else min(distance, CAP)
        return {"ks": ks, "psi": psi_value, "wasserstein": distance}


def category_cells(profile: CategoricalProfile, window: int) -> tuple[dict[str, int], np.ndarray]:
    """Category -> cell for windows of ``window`` values, and each cell's reference share.

    Categories expected at least ``MIN_EXPECTED`` times keep a cell; the rest share the last
    cell with ``other`` and any category the reference never saw.
    """
    freqs = np.asarray(profile.frequencies, dtype=np.float64)
    keep = freqs * window >= MIN_EXPECTED
    k = int(keep.sum())
    ids = np.where(keep, np.cumsum(keep) - 1, k)
    probs = np.append(freqs[keep], max(1.0 - math.fsum(freqs[keep]), 0.0))
    return {c: int(i) for c, i in zip(profile.categories, ids, strict=True)}, probs


def categorical_rows(counts: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    m = counts.sum(axis=1, keepdims=True)
    chi2 = np.sum((counts - m * probs) ** 2 / np.maximum(m * np.maximum(probs, EPS), 1e-300), axis=1)
    return {"chi2": np.minimum(chi2, CAP), "psi": psi_rows(counts, probs)}


def _sorted_rows(window: Iterable[float]) -> np.ndarray:
    """The window's finite values, sorted, as one row."""
    x = np.asarray(window, dtype=np.float64).ravel()
    return np.sort(x[np.isfinite(x)])[None, :]


def _category_rows(window: Iterable[Any], profile: CategoricalProfile) -> tuple[np.ndarray, np.ndarray]:
    """Counts per cell (see ``category_cells``) of a window of categories as one row, and the cells' shares."""
    labels = [s for s in map(as_label, window) if s is not None]
    index, probs = category_cells(profile, len(labels))
    other = len(probs) - 1
    return np.bincount([index.get(s, other) for s in labels], minlength=len(probs))[None, :], probs


def category_counts(window: Iterable[Any], profile: CategoricalProfile) -> np.ndarray:
    """Counts of a window's categories per cell: the categories expected at least 5 times, then the rest."""
    counts: np.ndarray = _category_rows(window, profile)[0][0]
    return counts


def ks_statistic(window: Iterable[float], profile: NumericProfile) -> float:
    """Kolmogorov-Smirnov distance between the window and the reference CDF (0 for an empty window)."""
    xs = _sorted_rows(window)
    return float(ks_rows(xs, profile)[0]) if xs.size else 0.0


def wasserstein(window: Iterable[float], profile: NumericProfile) -> float:
    """Wasserstein-1 distance between quantile functions over [1%, 99%], in units of the reference std."""
    xs = _sorted_rows(window)
    return float(wasserstein_distance_rows(xs, profile)[0]) if xs.size else 0.0


def psi(window: Iterable[Any], profile: Profile) -> float:
    """Population stability index over the profile's quantile bins, or over its category cells."""
    if isinstance(profile, NumericProfile):
        xs = _sorted_rows(window)
        return float(psi_numeric_rows(xs, profile)[0]) if xs.size else 0.0
    counts, probs = _category_rows(window, profile)
    return float(categorical_rows(counts, probs)["psi"][0]) if counts.sum() else 0.0


def chi_square(window: Iterable[Any], profile: CategoricalProfile) -> float:
    """Pearson's chi-square of the window's category counts against the reference mix."""
    return float(categorical_rows(*_category_rows(window, profile))["chi2"][0])


def unseen_categories(window: Iterable[Any], profile: CategoricalProfile) -> int:
    """How many distinct categories of the window the profile does not list."""
    known = set(profile.categories)
    return len({s for s in map(as_label, window) if s is not None and s not in known})


def window_statistics(window: Iterable[Any], profile: Profile) -> dict[str, float]:
    """Every statistic of one window: KS, PSI and Wasserstein, or chi-square, PSI and unseen categories."""
    if isinstance(profile, NumericProfile):
        xs = _sorted_rows(window)
        if not xs.size:
            return dict.fromkeys(NUMERIC_TESTS, 0.0)
        rows = (ks_rows(xs, profile), psi_numeric_rows(xs, profile), wasserstein_distance_rows(xs, profile))
        return {t: float(r[0]) for t, r in zip(NUMERIC_TESTS, rows, strict=True)}
    values = list(window)
    unseen = float(unseen_categories(values, profile))
    return {"chi2": chi_square(values, profile), "psi": psi(values, profile), "unseen": unseen}
