"""Reference profiles: a bounded summary of a feature's training distribution."""

from __future__ import annotations

import math
import numbers
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from detectors.windows import RunningMoments

QUANTILES = 201  # sketch points, at probabilities 0, 0.005, ..., 1
PSI_BINS = 10
TOP_K = 50
RESERVOIR = 10_000
_MASK = (1 << 64) - 1


def as_number(x: Any) -> float | None:
    """``x`` as a finite float, or ``None`` when missing, non-finite or not a number (bools are not)."""
    if type(x) is not float and (isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real)):
        return None
    try:
        v = float(x)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def is_number(x: Any) -> bool:
    """Whether ``x`` is a real number, finite or not (bools are not)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def as_label(x: Any) -> str | None:
    """``x`` as a category (``str(x)``), or ``None`` when missing (``None`` or NaN)."""
    if x is None or (isinstance(x, float) and x != x):
        return None
    return x if isinstance(x, str) else str(x)


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """A numeric reference in bounded memory, whatever the sample size.

    ``quantiles`` are the sample quantiles at ``linspace(0, 1, len(quantiles))``;
    ``cdf_below`` and ``cdf_at_most`` are the sample's shares below and at most
    each of them, exact even where a value repeats (an atom: integers, zeros).
    The reference CDF interpolates linearly between those points and jumps at
    atoms. ``psi_edges`` are the inner edges of up to 10 quantile bins,
    ``(-inf, e0], (e0, e1], ...``, with the reference share of each bin in
    ``psi_fractions``. ``sample_size`` is the number of values the sketch was
    computed from (at most ``n``).

    >>> import numpy as np
    >>> p = build_profile(np.random.default_rng(0).normal(40, 6, 100_000))
    >>> p.n, len(p.quantiles), len(p.psi_edges), round(p.mean, 1), round(p.std, 1)
    (100000, 201, 9, 40.0, 6.0)
    """

    n: int
    missing_rate: float
    mean: float
    std: float
    min: float
    max: float
    quantiles: tuple[float, ...]
    cdf_below: tuple[float, ...]
    cdf_at_most: tuple[float, ...]
    psi_edges: tuple[float, ...]
    psi_fractions: tuple[float, ...]
    sample_size: int

    def inverse_cdf(self, u: np.ndarray) -> np.ndarray:
        """The sketch's quantile function at probabilities ``u``: flat across atoms, linear between points."""
        q = np.asarray(self.quantiles)
        points, first = np.unique(q, return_index=True)
        xp = np.column_stack([np.asarray(self.cdf_below)[first], np.asarray(self.cdf_at_most)[first]]).ravel()
        return np.interp(u, xp, np.repeat(points, 2))

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Draw values by inverse-CDF sampling from the sketch."""
        return self.inverse_cdf(rng.random(size))

    def to_dict(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__slots__}
        return {"type": "numeric", **{k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> NumericProfile:
        return cls(
            int(doc["n"]), float(doc["missing_rate"]), float(doc["mean"]), float(doc["std"]),
            float(doc["min"]), float(doc["max"]), _floats(doc["quantiles"]), _floats(doc["cdf_below"]),
            _floats(doc["cdf_at_most"]), _floats(doc["psi_edges"]), _floats(doc["psi_fractions"]),
            int(doc["sample_size"]),
        )


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """Shares of the top categories (most frequent first), the rest pooled in ``other``.

    >>> p = build_profile(["a"] * 6 + ["b"] * 3 + ["c", None], top_k=2)
    >>> p.categories, p.frequencies, round(p.other, 3), round(p.missing_rate, 3)
    (('a', 'b'), (0.6, 0.3), 0.1, 0.091)
    """

    n: int
    missing_rate: float
    categories: tuple[str, ...]
    frequencies: tuple[float, ...]
    other: float
    sample_size: int

    def to_dict(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__slots__}
        return {"type": "categorical", **{k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CategoricalProfile:
        return cls(
            int(doc["n"]), float(doc["missing_rate"]), tuple(str(c) for c in doc["categories"]),
            tuple(float(f) for f in doc["frequencies"]), float(doc["other"]), int(doc["sample_size"]),
        )


def _floats(values: Iterable[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def profile_from_dict(doc: dict[str, Any]) -> NumericProfile | CategoricalProfile:
    """Rebuild a profile stored with ``to_dict()``."""
    return (NumericProfile if doc.get("type") == "numeric" else CategoricalProfile).from_dict(doc)


def _moments(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation, computed on rescaled values when plain sums would overflow."""
    scale = float(np.max(np.abs(x)))
    scale = scale if scale > 1e150 else 1.0
    y = x / scale
    std = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    return float(np.mean(y)) * scale, min(std * scale, sys.float_info.max)


def _numeric(
    x: np.ndarray, n: int, missing: int, quantiles: int, bins: int, exact: tuple[float, ...] = (),
) -> NumericProfile:
    """Profile of the finite values ``x``; ``exact`` (mean, std, min, max) when known beyond ``x``."""
    x = np.sort(x)
    q = np.maximum.accumulate(np.quantile(x, np.linspace(0.0, 1.0, quantiles)))
    below, at_most = np.searchsorted(x, q, side="left") / len(x), np.searchsorted(x, q, side="right") / len(x)
    edges = np.unique(np.quantile(x, np.arange(1, bins) / bins))
    counts = np.diff(np.searchsorted(x, edges, side="right"), prepend=0, append=len(x))
    mean, std, lo, hi = exact or (*_moments(x), float(q[0]), float(q[-1]))
    return NumericProfile(
        n, missing / max(n + missing, 1), mean, std, lo, hi, tuple(q.tolist()), tuple(below.tolist()),
        tuple(at_most.tolist()), tuple(edges.tolist()), tuple((counts / len(x)).tolist()), len(x),
    )


def _categorical(labels: Iterable[str], n: int, missing: int, top_k: int) -> CategoricalProfile:
    counts = Counter(labels)
    size = sum(counts.values())
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    shares = tuple(c / size for _, c in top)
    return CategoricalProfile(
        n, missing / max(n + missing, 1), tuple(k for k, _ in top), shares, max(1.0 - math.fsum(shares), 0.0), size,
    )


def build_profile(
    values: Iterable[Any], *, kind: str | None = None, quantiles: int = QUANTILES, bins: int = PSI_BINS,
    top_k: int = TOP_K,
) -> NumericProfile | CategoricalProfile:
    """Profile a reference sample: numeric when every present value is a number (or ``kind="numeric"``).

    ``None``, NaN and infinities count as missing (a numeric profile also treats
    non-numbers as missing); categories are compared as ``str(value)``.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf" and kind != "categorical":
        x = values.astype(np.float64).ravel()
        finite = x[np.isfinite(x)]
        if not len(finite):
            raise ValueError("cannot profile a sample without values")
        return _numeric(finite, len(finite), len(x) - len(finite), quantiles, bins)
    items = list(values)
    if kind is None:
        present = [v for v in items if as_label(v) is not None]
        kind = "numeric" if present and all(is_number(v) for v in present) else "categorical"
    if kind == "numeric":
        parsed = [as_number(x) for x in items]
        return build_profile(np.array([np.nan if v is None else v for v in parsed]), quantiles=quantiles, bins=bins)
    labels = [s for s in map(as_label, items) if s is not None]
    if not labels:
        raise ValueError("cannot profile a sample without values")
    return _categorical(labels, len(labels), len(items) - len(labels), top_k)


def _draw(seed: int, i: int) -> int:
    """A 64-bit hash of (seed, i) (splitmix64): the reservoir's seeded randomness, with no state to keep."""
    z = (seed * 0x9E3779B97F4A7C15 + (i + 1) * 0xD1B54A32D192ED03) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _no_numbers() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class ProfileBuilder:
    """Build a profile online from the first ``size`` present values of a stream.

    Values beyond ``capacity`` go through reservoir sampling (algorithm R, with
    a seeded hash instead of an RNG object, so the state is plain numbers); mean,
    standard deviation, min and max stay exact. ``kind`` is decided by the first
    present value when not given.

    >>> import random
    >>> rng = random.Random(1)
    >>> builder = ProfileBuilder(size=20_000, capacity=5_000)
    >>> for i in range(30_000):
    ...     builder.update(rng.gauss(0, 1))
    ...     if builder.done:
    ...         break
    >>> i, builder.profile().sample_size, round(builder.profile().quantiles[100], 1)
    (19999, 5000, 0.0)
    """

    size: int = 5000
    kind: str | None = None
    capacity: int = RESERVOIR
    seed: int = 0
    top_k: int = TOP_K
    seen: int = 0
    missing: int = 0
    moments: RunningMoments = field(default_factory=RunningMoments)
    low: float = math.inf
    high: float = -math.inf
    numbers: np.ndarray = field(default_factory=_no_numbers)
    labels: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.seen >= self.size

    def update(self, x: Any) -> None:
        """Offer one value; ignored once ``done``."""
        if self.seen >= self.size:
            return
        if self.kind is None:
            if as_label(x) is None:
                self.missing += 1
                return
            self.kind = "numeric" if is_number(x) else "categorical"
        value = as_number(x) if self.kind == "numeric" else as_label(x)
        if value is None:
            self.missing += 1
            return
        i, cap = self.seen, self.capacity
        self.seen += 1
        slot = i if i < cap else _draw(self.seed, i) % (i + 1)
        if isinstance(value, str):
            if slot == len(self.labels):
                self.labels.append(value)
            elif slot < cap:
                self.labels[slot] = value
            return
        self.moments.update(value)
        self.low, self.high = min(self.low, value), max(self.high, value)
        if len(self.numbers) == 0:
            self.numbers = np.zeros(min(self.size, cap), dtype=np.float64)
        if slot < cap:
            self.numbers[slot] = value

    def profile(self, quantiles: int = QUANTILES, bins: int = PSI_BINS) -> NumericProfile | CategoricalProfile:
        """The profile of the values seen so far."""
        if self.seen == 0:
            raise ValueError("cannot profile a sample without values")
        if self.kind == "categorical":
            return _categorical(self.labels, self.seen, self.missing, self.top_k)
        x = self.numbers[: min(self.seen, self.capacity)]
        m = self.moments
        exact = (m.mean, m.std, self.low, self.high) if math.isfinite(m.mean) and math.isfinite(m.std) else ()
        return _numeric(x, self.seen, self.missing, quantiles, bins, exact or (*_moments(x), self.low, self.high))
