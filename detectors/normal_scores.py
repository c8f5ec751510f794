"""Normal scores: any numeric feature mapped through its reference CDF onto a standard normal.

A sequential test on raw values has a false-alarm rate that depends on the
feature's shape: a lognormal's long right tail makes an upper CUSUM fire far
more often than a normal's. Mapped through the reference CDF and the normal
quantile function, every feature is N(0, 1) while it matches its reference, so
one calibration serves them all.

The normal quantile function is tabulated once per process
(:func:`normal_table`) and shared by every feature; a feature's scores keep
only views of its profile's arrays (no copies), so a monitor's scoring costs
no memory beyond its profile.
"""

from __future__ import annotations

import bisect
import functools
import math

import numpy as np

from detectors.reference import NumericProfile, build_profile  # noqa: F401 (build_profile: doctest)

# Acklam's rational approximation of the normal quantile function (relative error < 1.2e-9).
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
U_FLOOR = 1e-10  # the table's smallest probability: below every profile's floor of half a reference value


def normal_quantile(u: np.ndarray) -> np.ndarray:
    """The standard normal quantile function, vectorised, for ``u`` in (0, 1).

    >>> [round(float(z), 4) for z in normal_quantile(np.array([0.025, 0.5, 0.975]))]
    [-1.96, 0.0, 1.96]
    """
    u = np.asarray(u, dtype=np.float64)
    out = np.empty_like(u)
    low, high = u < 0.02425, u > 1 - 0.02425
    mid = ~(low | high)
    q = u[mid] - 0.5
    r = q * q
    num = ((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]
    den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
    out[mid] = q * num / den
    for mask, sign, p in ((low, 1.0, u[low]), (high, -1.0, 1.0 - u[high])):
        t = np.sqrt(-2.0 * np.log(p))
        num = ((((_C[0] * t + _C[1]) * t + _C[2]) * t + _C[3]) * t + _C[4]) * t + _C[5]
        out[mask] = sign * num / ((((_D[0] * t + _D[1]) * t + _D[2]) * t + _D[3]) * t + 1.0)
    return out


@functools.cache
def normal_table() -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and their normal quantiles, finely (log-spaced in the tails): one table for every feature.

    >>> u, z = normal_table()
    >>> float(u[0]), round(float(z[0]), 2), len(u)
    (1e-10, -6.36, 4798)
    """
    tail = np.geomspace(U_FLOOR, 0.01, 1400)  # as fine as a 400-point tail down to 1/20,000 was
    u = np.unique(np.concatenate([tail, np.linspace(0.01, 0.99, 2000), 1.0 - tail[::-1]]))
    z = normal_quantile(u)
    u.setflags(write=False)
    z.setflags(write=False)
    return u, z


@functools.cache
def _table_lists() -> tuple[list[float], list[float]]:
    """:func:`normal_table` as Python lists, for scoring one value at a time."""
    u, z = normal_table()
    return u.tolist(), z.tolist()


def _interp(x: float, xp: list[float], fp: list[float]) -> float:
    """``np.interp(x, xp, fp)`` for one value in ``[xp[0], xp[-1]]``, with numpy's arithmetic (bit for bit)."""
    j = bisect.bisect_right(xp, x) - 1
    if j < 0:
        return fp[0]
    if j >= len(xp) - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    return slope * (x - xp[j]) + fp[j]


class NormalScores:
    """Map values to N(0, 1) through a reference profile's CDF (probability integral transform).

    Between the sketch's points the CDF is linear; on an atom (a value the
    reference repeats, as integers do) the probability is spread across the
    atom's jump by a low-discrepancy sequence, so discrete features are N(0, 1)
    too. Probabilities are kept within half a reference value of 0 and 1, so
    a value far outside the reference counts as an extreme, not an infinity.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> scores = NormalScores(build_profile(rng.lognormal(0.0, 1.0, 20_000)))
    >>> z = scores.transform(rng.lognormal(0.0, 1.0, 50_000), start=0)
    >>> abs(round(float(z.mean()), 2)), round(float(z.std()), 2)
    (0.0, 1.0)
    >>> ints = NormalScores(build_profile(rng.poisson(4, 20_000).astype(float)))
    >>> z = ints.transform(rng.poisson(4, 50_000).astype(float), start=0)
    >>> abs(round(float(z.mean()), 1)), round(float(z.std()), 1)
    (0.0, 1.0)
    """

    __slots__ = ("points", "below", "at_most", "u_min", "u_max", "atoms")

    def __init__(self, profile: NumericProfile) -> None:
        q = profile.quantiles
        if np.all(q[1:] > q[:-1]):  # no repeated sketch point: the profile's own arrays, shared
            self.points, self.below, self.at_most = q, profile.cdf_below, profile.cdf_at_most
        else:
            self.points, first = np.unique(q, return_index=True)
            self.below, self.at_most = profile.cdf_below[first], profile.cdf_at_most[first]
        self.u_min = 0.5 / max(profile.sample_size, 1)
        self.u_max = 1.0 - self.u_min
        self.atoms = bool(np.any(self.at_most - self.below > 0.0))

    def transform(self, x: np.ndarray, start: int) -> np.ndarray:
        """Normal scores of ``x``; ``start`` is the index of ``x[0]`` in the stream (for the atom spread)."""
        # The CDF between points, as one np.interp: each point twice, below then at most.
        x_knots = np.repeat(self.points, 2)
        u_knots = np.column_stack([self.below, self.at_most]).ravel()
        u = np.interp(x, x_knots, u_knots, left=0.0, right=1.0)
        if self.atoms:
            pts = self.points
            i = np.minimum(np.searchsorted(pts, x), len(pts) - 1)
            exact = pts[i] == x
            if exact.any():
                spread = (np.arange(start, start + len(x)) * _GOLDEN + 0.5 * _GOLDEN) % 1.0
                u = np.where(exact, self.below[i] + spread * (self.at_most[i] - self.below[i]), u)
        u_grid, z_grid = normal_table()
        z: np.ndarray = np.interp(np.clip(u, self.u_min, self.u_max), u_grid, z_grid)
        return z

    def score(self, x: float, index: int) -> float:
        """``transform(np.array([x]), index)[0]`` in plain Python: the same arithmetic, ten times faster."""
        pts = self.points
        last = len(pts) - 1
        at = -1  # the point x sits on, if any
        if x < pts[0]:
            u = 0.0
        elif x > pts[last]:
            u = 1.0
        else:  # as np.interp over the knots (each point twice: below, then at most)
            c = bisect.bisect_right(pts, x)  # points at most x: the knot before x is point c - 1's "at most"
            p, a = float(pts[c - 1]), float(self.at_most[c - 1])
            if x == p:
                u, at = a, c - 1
            elif c > last:
                u = a
            else:
                q, b = float(pts[c]), float(self.below[c])
                slope = (b - a) / (q - p)
                u = slope * (x - p) + a
                if u != u:  # as numpy: from the other end, then the flat value
                    u = slope * (x - q) + b
                    if u != u and a == b:
                        u = a
        if at >= 0 and self.atoms:  # on a point: spread across its atom (if it has one)
            spread = (index * _GOLDEN + 0.5 * _GOLDEN) % 1.0
            lo = float(self.below[at])
            u = lo + spread * (float(self.at_most[at]) - lo)
        u_grid, z_grid = _table_lists()
        return _interp(min(max(u, self.u_min), self.u_max), u_grid, z_grid)
