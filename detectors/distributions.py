"""A feature's reference against its recent values, as shares per bin: what a dashboard draws.

Numbers get equal-width bins over the range both cover (the reference's shares
come from its quantile sketch, interpolated like its CDF); categories get the
reference's top categories plus ``other``, in the windowed chi-square test's
cells. Pure computation on what the detectors already hold: nothing is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.reference import CategoricalProfile, NumericProfile
from detectors.two_sample import category_cells

BINS = 20


@dataclass(frozen=True, slots=True)
class Distribution:
    """Reference and recent shares over the same bins.

    ``labels`` are category names (categorical) or empty; ``edges`` are the
    ``len(reference) + 1`` bin edges (numeric) or empty. ``recent_n`` is how
    many recent values the shares rest on.
    """

    kind: str
    labels: tuple[str, ...]
    edges: tuple[float, ...]
    reference: tuple[float, ...]
    recent: tuple[float, ...]
    recent_n: int
    reference_n: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: lists of rounded numbers."""
        return {
            "type": self.kind,
            "labels": list(self.labels),
            "edges": [_round(e) for e in self.edges],
            "reference": [round(s, 5) for s in self.reference],
            "recent": [round(s, 5) for s in self.recent],
            "recent_n": self.recent_n,
            "reference_n": self.reference_n,
        }


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def reference_cdf(profile: NumericProfile, x: np.ndarray) -> np.ndarray:
    """The reference's share of values at most ``x``, from its sketch (linear between points)."""
    q = np.asarray(profile.quantiles)
    at_most = np.asarray(profile.cdf_at_most)
    found: np.ndarray = np.interp(x, q, at_most, left=0.0, right=1.0)
    return found


def numeric_distribution(profile: NumericProfile, recent: np.ndarray, bins: int = BINS) -> Distribution:
    """Equal-width bins over both ranges; the reference's shares from its sketch, the recent values' counted.

    >>> import numpy as np
    >>> from detectors.reference import build_profile
    >>> d = numeric_distribution(build_profile(np.arange(1000.0)), np.arange(500.0, 1500.0), bins=4)
    >>> d.edges, [round(s, 3) for s in d.reference], d.recent
    ((0.0, 374.75, 749.5, 1124.25, 1499.0), [0.375, 0.375, 0.25, 0.0], (0.0, 0.25, 0.375, 0.375))
    """
    values = recent[np.isfinite(recent)]
    lo, hi = profile.quantiles[0], profile.quantiles[-1]
    if len(values):
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    cdf = reference_cdf(profile, edges)
    cdf[0], cdf[-1] = 0.0, 1.0  # the sketch spans [min, max]: every value falls in some bin
    reference = np.diff(cdf)
    counts = np.histogram(values, bins=edges)[0] if len(values) else np.zeros(bins)
    shares = counts / max(len(values), 1)
    return Distribution(
        "numeric",
        (),
        tuple(edges.tolist()),
        tuple(reference.tolist()),
        tuple(shares.tolist()),
        len(values),
        profile.n,
    )


def categorical_distribution(
    profile: CategoricalProfile,
    cells: dict[str, int],
    counts: np.ndarray,
) -> Distribution:
    """The reference's shares per test cell (categories too rare for a cell of their own join ``other``)
    against the recent counts in those cells.

    >>> from detectors.reference import build_profile
    >>> p = build_profile(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    >>> d = categorical_distribution(p, {"a": 0, "b": 1, "c": 2}, np.array([5, 5, 0, 0]))
    >>> d.labels, d.reference, d.recent
    (('a', 'b', 'c', 'other'), (0.6, 0.3, 0.1, 0.0), (0.5, 0.5, 0.0, 0.0))
    """
    size = len(counts)
    labels = ["other"] * size
    reference = np.zeros(size)
    for category, frequency in zip(profile.categories, profile.frequencies, strict=True):
        cell = cells.get(category, size - 1)
        reference[cell] += frequency
        if cell < size - 1:
            labels[cell] = category
    reference[size - 1] += profile.other
    total = int(counts.sum())
    shares = counts / max(total, 1)
    return Distribution(
        "categorical",
        tuple(labels),
        (),
        tuple(reference.tolist()),
        tuple(shares.tolist()),
        total,
        profile.n,
    )


def window_distribution(windowed: Any) -> Distribution | None:
    """The distribution of a :class:`~detectors.windowed_tests.WindowedDriftMonitor`: its reference
    against its latest values (numbers: the last full window's worth; categories: the window so far).
    None while it has no reference yet.
    """
    profile = getattr(windowed, "profile", None)
    if isinstance(profile, NumericProfile):
        buffer: np.ndarray = windowed.buffer
        recent = buffer if windowed.windows > 0 else buffer[: windowed.fill]  # the buffer holds the last window
        return numeric_distribution(profile, recent)
    if isinstance(profile, CategoricalProfile) and len(windowed.counts):
        cells, _ = category_cells(profile, windowed.window)  # the windowed test's own cells, in its counts' order
        return categorical_distribution(profile, cells, windowed.counts)
    return None


__all__ = ["Distribution", "categorical_distribution", "numeric_distribution", "window_distribution"]
