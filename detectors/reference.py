"""Reference profiles: a bounded summary of a feature's training distribution.

A profile is a value (frozen dataclass) small enough to keep one per feature
of thousands of models: a numeric profile holds its sketch in numpy arrays
(201 points cost 1.6 KB as float64, against 6.4 KB as a tuple of Python
floats), read-only so that monitors can share them and derive tables from
them without copies. ``to_dict``/``from_dict`` give the JSON form stored for
uploaded references, and the dataclass fields are what checkpoints encode.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from detectors.columns import is_number

QUANTILES = 201  # sketch points, at probabilities 0, 0.005, ..., 1
PSI_BINS = 10
TOP_K = 50

__all__ = [
    "CategoricalProfile",
    "NumericProfile",
    "Profile",
    "as_label",
    "as_number",
    "as_numbers",
    "build_profile",
    "is_number",
    "mean_and_std",
    "profile_from_dict",
]


def as_number(x: Any) -> float | None:
    """``x`` as a finite float, or ``None`` when missing, non-finite or not a number (bools are not)."""
    if not is_number(x):
        return None
    try:
        v = float(x)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def as_numbers(values: Any) -> np.ndarray:
    """A float64 column of ``values``: NaN where a value is missing, non-finite or not a number.

    >>> as_numbers([1, None, "2", 2.5, float("inf"), True]).tolist()
    [1.0, nan, nan, 2.5, nan, nan]
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        x = values.astype(np.float64, copy=False).ravel()
        return x if np.isfinite(x).all() else np.where(np.isfinite(x), x, np.nan)
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return np.full(values.size, np.nan)
    items = values.tolist() if isinstance(values, np.ndarray) else values
    return np.array([np.nan if v is None else v for v in map(as_number, items)], dtype=np.float64)


def as_label(x: Any) -> str | None:
    """``x`` as a category (``str(x)``), or ``None`` when missing (``None`` or NaN)."""
    if x is None or (isinstance(x, float) and x != x):
        return None
    if isinstance(x, str):
        return x if type(x) is str else str.__str__(x)  # numpy's str_ and other subclasses: the plain string
    return str(x)


def _frozen(values: Any) -> np.ndarray:
    """A read-only 1-D float64 array of ``values`` (copied when the caller could still change it)."""
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        out = out.reshape(-1)
    if out.flags.writeable:
        if out is values or out.base is not None:
            out = out.copy()
        out.setflags(write=False)
    return out


_SKETCH = ("quantiles", "cdf_below", "cdf_at_most", "psi_edges", "psi_fractions")


@dataclass(frozen=True, slots=True, eq=False)
class NumericProfile:
    """A numeric reference in bounded memory, whatever the sample size.

    ``quantiles`` are the sample quantiles at ``linspace(0, 1, len(quantiles))``;
    ``cdf_below`` and ``cdf_at_most`` are the sample's shares below and at most
    each of them, exact even where a value repeats (an atom: integers, zeros).
    The reference CDF interpolates linearly between those points and jumps at
    atoms. ``psi_edges`` are the inner edges of up to 10 quantile bins,
    ``(-inf, e0], (e0, e1], ...``, with the reference share of each bin in
    ``psi_fractions``. ``sample_size`` is the number of values the sketch was
    computed from (at most ``n``). The five sketch arrays are read-only float64.

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
    quantiles: np.ndarray
    cdf_below: np.ndarray
    cdf_at_most: np.ndarray
    psi_edges: np.ndarray
    psi_fractions: np.ndarray
    sample_size: int

    def __post_init__(self) -> None:
        for name in _SKETCH:
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not NumericProfile:
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            if f.name in _SKETCH
            else getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
        )

    def __hash__(self) -> int:
        return hash((self.n, self.sample_size, self.mean, self.std, self.quantiles.tobytes()))

    def inverse_cdf(self, u: np.ndarray) -> np.ndarray:
        """The sketch's quantile function at probabilities ``u``: flat across atoms, linear between points."""
        points, first = np.unique(self.quantiles, return_index=True)
        xp = np.column_stack([self.cdf_below[first], self.cdf_at_most[first]]).ravel()
        out: np.ndarray = np.interp(u, xp, np.repeat(points, 2))
        return out

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Draw values by inverse-CDF sampling from the sketch."""
        return self.inverse_cdf(rng.random(size))

    def to_dict(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"type": "numeric", **{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in doc.items()}}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> NumericProfile:
        return cls(
            int(doc["n"]),
            float(doc["missing_rate"]),
            float(doc["mean"]),
            float(doc["std"]),
            float(doc["min"]),
            float(doc["max"]),
            quantiles=np.asarray(doc["quantiles"], dtype=np.float64),
            cdf_below=np.asarray(doc["cdf_below"], dtype=np.float64),
            cdf_at_most=np.asarray(doc["cdf_at_most"], dtype=np.float64),
            psi_edges=np.asarray(doc["psi_edges"], dtype=np.float64),
            psi_fractions=np.asarray(doc["psi_fractions"], dtype=np.float64),
            sample_size=int(doc["sample_size"]),
        )


@dataclass(frozen=True, slots=True, eq=False)
class CategoricalProfile:
    """Shares of the top categories (most frequent first), the rest pooled in ``other``.

    >>> p = build_profile(["a"] * 6 + ["b"] * 3 + ["c", None], top_k=2)
    >>> p.categories, p.frequencies.tolist(), round(p.other, 3), round(p.missing_rate, 3)
    (('a', 'b'), [0.6, 0.3], 0.1, 0.091)
    """

    n: int
    missing_rate: float
    categories: tuple[str, ...]
    frequencies: np.ndarray
    other: float
    sample_size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "frequencies", _frozen(self.frequencies))

    def __eq__(self, other: object) -> bool:
        if type(other) is not CategoricalProfile:
            return NotImplemented
        return (self.n, self.missing_rate, self.categories, self.other, self.sample_size) == (
            other.n,
            other.missing_rate,
            other.categories,
            other.other,
            other.sample_size,
        ) and np.array_equal(self.frequencies, other.frequencies)

    def __hash__(self) -> int:
        return hash((self.n, self.sample_size, self.categories, self.frequencies.tobytes()))

    def to_dict(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            "type": "categorical",
            **{
                k: v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v
                for k, v in doc.items()
            },
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CategoricalProfile:
        return cls(
            int(doc["n"]),
            float(doc["missing_rate"]),
            tuple(str(c) for c in doc["categories"]),
            np.asarray(doc["frequencies"], dtype=np.float64),
            float(doc["other"]),
            int(doc["sample_size"]),
        )


Profile = NumericProfile | CategoricalProfile  # a feature's reference, numeric or categorical


def profile_from_dict(doc: dict[str, Any]) -> Profile:
    """Rebuild a profile stored with ``to_dict()``."""
    return (NumericProfile if doc.get("type") == "numeric" else CategoricalProfile).from_dict(doc)


def mean_and_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation, computed on rescaled values when plain sums would overflow."""
    scale = float(np.max(np.abs(x)))
    scale = scale if scale > 1e150 else 1.0
    y = x / scale
    std = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    return float(np.mean(y)) * scale, min(std * scale, sys.float_info.max)


def numeric_profile(
    x: np.ndarray,
    n: int,
    missing: int,
    quantiles: int = QUANTILES,
    bins: int = PSI_BINS,
    exact: tuple[float, ...] = (),
) -> NumericProfile:
    """Profile of the finite values ``x``; ``exact`` (mean, std, min, max) when known beyond ``x``."""
    x = np.sort(x)
    q = np.maximum.accumulate(np.quantile(x, np.linspace(0.0, 1.0, quantiles)))
    below, at_most = np.searchsorted(x, q, side="left") / len(x), np.searchsorted(x, q, side="right") / len(x)
    edges = np.unique(np.quantile(x, np.arange(1, bins) / bins))
    counts = np.diff(np.searchsorted(x, edges, side="right"), prepend=0, append=len(x))
    mean, std, lo, hi = exact or (*mean_and_std(x), float(q[0]), float(q[-1]))
    return NumericProfile(
        n,
        missing / max(n + missing, 1),
        mean,
        std,
        lo,
        hi,
        q,
        below,
        at_most,
        edges,
        counts / len(x),
        len(x),
    )


def categorical_profile(counts: Mapping[str, int], n: int, missing: int, top_k: int = TOP_K) -> CategoricalProfile:
    """Profile of category counts (of a sample of ``sum(counts)`` values out of ``n``)."""
    size = sum(counts.values())
    top = sorted(((k, c) for k, c in counts.items() if c), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    shares = [c / size for _, c in top]
    return CategoricalProfile(
        n,
        missing / max(n + missing, 1),
        tuple(k for k, _ in top),
        np.asarray(shares, dtype=np.float64),
        max(1.0 - math.fsum(shares), 0.0),
        size,
    )


def build_profile(
    values: Iterable[Any],
    *,
    kind: str | None = None,
    quantiles: int = QUANTILES,
    bins: int = PSI_BINS,
    top_k: int = TOP_K,
) -> Profile:
    """Profile a reference sample: numeric when every present value is a number (or ``kind="numeric"``).

    ``None``, NaN and infinities count as missing (a numeric profile also treats
    non-numbers as missing); categories are compared as ``str(value)``.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf" and kind != "categorical":
        x = values.astype(np.float64).ravel()
        finite = x[np.isfinite(x)]
        if not len(finite):
            raise ValueError("cannot profile a sample without values")
        return numeric_profile(finite, len(finite), len(x) - len(finite), quantiles, bins)
    items = list(values)
    if kind is None:
        present = [v for v in items if as_label(v) is not None]
        kind = "numeric" if present and all(is_number(v) for v in present) else "categorical"
    if kind == "numeric":
        return build_profile(as_numbers(items), quantiles=quantiles, bins=bins)
    labels = [s for s in map(as_label, items) if s is not None]
    if not labels:
        raise ValueError("cannot profile a sample without values")
    return categorical_profile(Counter(labels), len(labels), len(items) - len(labels), top_k)
