"""A reference profile built online from the first values of a stream, in memory that grows with them."""

from __future__ import annotations

import math
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import grown
from detectors.reference import (
    PSI_BINS,
    QUANTILES,
    TOP_K,
    CategoricalProfile,
    NumericProfile,
    as_label,
    as_number,
    as_numbers,
    categorical_profile,
    is_number,
    mean_and_std,
    numeric_profile,
)

__all__ = ["RESERVOIR", "ProfileBuilder"]

RESERVOIR = 10_000
_MASK = (1 << 64) - 1


def _draw(seed: int, i: int) -> int:
    """A 64-bit hash of (seed, i) (splitmix64): the reservoir's seeded randomness, with no state to keep."""
    z = (seed * 0x9E3779B97F4A7C15 + (i + 1) * 0xD1B54A32D192ED03) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _draws(seed: int, i: np.ndarray) -> np.ndarray:
    """:func:`_draw` for many ``i`` at once (numpy's uint64 arithmetic wraps modulo 2**64, as the mask does).

    >>> int(_draws(7, np.array([12_345]))[0]) == _draw(7, 12_345)
    True
    """
    u = np.uint64
    z = u((seed * 0x9E3779B97F4A7C15) & _MASK) + (i.astype(u) + u(1)) * u(0xD1B54A32D192ED03)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    return z ^ (z >> u(31))


def _no_numbers() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class ProfileBuilder:
    """Build a profile online from the first ``size`` present values of a stream.

    Numbers are kept in an array that grows as they come (1.5 times at a time),
    up to ``min(size, capacity)``; categories are counted. Beyond ``capacity``
    values the sample is a reservoir (algorithm R, with a seeded hash instead
    of an RNG object, so the state is plain numbers) and the mean, standard
    deviation, min and max come from exact running aggregates of every value.
    ``kind`` is decided by the first present value when not given.
    :meth:`update_many` takes a batch and returns how many of its values the
    profile took, so the caller continues with the rest; any split of a stream
    gives the same state.

    >>> import random
    >>> rng = random.Random(1)
    >>> builder = ProfileBuilder(size=20_000, capacity=5_000)
    >>> for i in range(30_000):
    ...     builder.update(rng.gauss(0, 1))
    ...     if builder.done:
    ...         break
    >>> i, builder.profile().sample_size, round(float(builder.profile().quantiles[100]), 1)
    (19999, 5000, 0.0)
    """

    size: int = 5000
    kind: str | None = None
    capacity: int = RESERVOIR
    seed: int = 0
    top_k: int = TOP_K
    seen: int = 0
    missing: int = 0
    numbers: np.ndarray = field(default_factory=_no_numbers)  # the numbers kept (the first ``seen`` slots used)
    counts: dict[str, int] = field(default_factory=dict)  # categories, while every value is kept
    labels: list[str] = field(default_factory=list)  # the reservoir's categories (only when size > capacity)
    low: float = math.inf  # exact aggregates of every number (only when size > capacity)
    high: float = -math.inf
    shift: float = 0.0  # the first number: the sums are of x - shift, so the variance does not cancel
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def done(self) -> bool:
        return self.seen >= self.size

    @property
    def reservoir(self) -> bool:
        """Whether the sample is a reservoir (more values are wanted than are kept)."""
        return self.size > self.capacity

    def update(self, x: Any) -> None:
        """Offer one value; ignored once ``done``. The same state as ``update_many([x])``, faster."""
        if self.seen >= self.size:
            return
        if self.kind is None:
            if as_label(x) is None:
                self.missing += 1
                return
            self.kind = "numeric" if is_number(x) else "categorical"
        if self.kind == "numeric":
            v = x if type(x) is float and x - x == 0.0 else as_number(x)
            if v is None:
                self.missing += 1
            else:
                self._number(v)
            return
        label = as_label(x)
        if label is None:
            self.missing += 1
        elif not self.reservoir:
            self.seen += 1
            self.counts[label] = self.counts.get(label, 0) + 1
        else:
            self._labels([label])

    def update_many(self, values: Sequence[Any] | np.ndarray) -> int:
        """Offer values in order; return how many were taken (all, or up to the one that completes the profile)."""
        start, n = 0, len(values)
        if self.seen >= self.size or not n:
            return 0
        if self.seen + n < self.size <= self.capacity and self._took_plain(values):
            return n
        if self.kind is None:
            start = _first_present(values)
            self.missing += start
            if start == n:
                return n
            self.kind = "numeric" if is_number(values[start]) else "categorical"
        rest = values[start:]
        if self.kind == "numeric":
            x = as_numbers(rest)
            usable = np.isfinite(x)
            stop = _stop(usable, self.size - self.seen)
            kept = x if stop == len(x) and usable.all() else x[:stop][usable[:stop]]
            self.missing += stop - len(kept)
            self._numbers(kept)
        else:
            items = rest.tolist() if isinstance(rest, np.ndarray) else rest
            labels = items if type(items) is list and set(map(type, items)) == {str} else [as_label(v) for v in items]
            stop = _stop(np.array([label is not None for label in labels], dtype=bool), self.size - self.seen)
            present = [label for label in labels[:stop] if label is not None]
            self.missing += stop - len(present)
            if self.reservoir:
                self._labels(present)
            else:
                self.seen += len(present)
                counts = self.counts
                for label in present:
                    counts[label] = counts.get(label, 0) + 1
        return start + stop

    def _took_plain(self, values: Sequence[Any] | np.ndarray) -> bool:
        """Take a batch that does not complete the profile (every value kept, no reservoir) in a few steps, if every
        value is present and of the profile's kind (finite float64s, or plain strings); False (nothing taken)
        otherwise. The state is the general path's."""
        kind, n = self.kind, len(values)
        if type(values) is np.ndarray:
            if kind == "categorical" or values.dtype != np.float64 or values.ndim != 1 or not np.isfinite(values).all():
                return False
            self.numbers = grown(self.numbers, self.seen + n, self.size)
            self.numbers[self.seen : self.seen + n] = values
            self.kind = "numeric"
        elif kind != "numeric" and type(values) is list and set(map(type, values)) == {str}:
            _count_elements(self.counts, values)
            self.kind = "categorical"
        else:
            return False
        self.seen += n
        return True

    def _number(self, v: float) -> None:
        """:meth:`_numbers` for one value, with the same arithmetic (so the same state) in plain Python."""
        i, cap = self.seen, self.capacity
        self.seen += 1
        limit = min(self.size, cap)
        self.numbers = grown(self.numbers, min(self.seen, limit), limit)
        slot = i if i < cap else _draw(self.seed, i) % (i + 1)
        if slot < cap:
            self.numbers[slot] = v
        if self.reservoir:
            if i == 0:
                self.shift = v
            d = v - self.shift
            self.total += d
            self.total_sq += d * d
            self.low, self.high = min(self.low, v) + 0.0, max(self.high, v) + 0.0  # + 0.0: one zero, not two

    def _numbers(self, kept: np.ndarray) -> None:
        """Keep finite numbers: in the next slots while there is room, then by reservoir sampling."""
        if not len(kept):
            return
        first, cap = self.seen, self.capacity
        self.seen += len(kept)
        limit = min(self.size, cap)
        self.numbers = grown(self.numbers, min(self.seen, limit), limit)
        direct = max(min(cap - first, len(kept)), 0)
        self.numbers[first : first + direct] = kept[:direct]
        if direct < len(kept):
            i = np.arange(first + direct, self.seen)
            slots = _draws(self.seed, i) % (i + 1).astype(np.uint64)
            keep = np.flatnonzero(slots < cap)
            # the last value drawn for a slot is the one it holds
            _, last = np.unique(slots[keep][::-1], return_index=True)
            chosen = keep[len(keep) - 1 - last]
            self.numbers[slots[chosen].astype(np.int64)] = kept[direct:][chosen]
        if self.reservoir:
            if first == 0:
                self.shift = float(kept[0])
            d = kept - self.shift
            self.total = float(np.cumsum(np.concatenate(([self.total], d)))[-1])
            self.total_sq = float(np.cumsum(np.concatenate(([self.total_sq], d * d)))[-1])
            self.low = min(self.low, float(kept.min())) + 0.0
            self.high = max(self.high, float(kept.max())) + 0.0

    def _labels(self, present: list[str]) -> None:
        """Keep categories in the reservoir (when more are wanted than kept)."""
        for label in present:
            i, cap = self.seen, self.capacity
            self.seen += 1
            slot = i if i < cap else _draw(self.seed, i) % (i + 1)
            if slot == len(self.labels):
                self.labels.append(label)
            elif slot < cap:
                self.labels[slot] = label

    def profile(self, quantiles: int = QUANTILES, bins: int = PSI_BINS) -> NumericProfile | CategoricalProfile:
        """The profile of the values seen so far."""
        if self.seen == 0:
            raise ValueError("cannot profile a sample without values")
        if self.kind == "categorical":
            counts = Counter(self.labels) if self.reservoir else self.counts
            return categorical_profile(counts, self.seen, self.missing, self.top_k)
        x = self.numbers[: min(self.seen, self.capacity)]
        if self.seen <= self.capacity:  # every value is in the sample
            return numeric_profile(x, self.seen, self.missing, quantiles, bins)
        n = self.seen
        mean = self.shift + self.total / n
        std = math.sqrt(max(self.total_sq - self.total * self.total / n, 0.0) / (n - 1))
        exact = (mean, std, self.low, self.high) if math.isfinite(mean) and math.isfinite(std) else ()
        return numeric_profile(x, n, self.missing, quantiles, bins, exact or (*mean_and_std(x), self.low, self.high))


def _first_present(values: Sequence[Any] | np.ndarray) -> int:
    """Index of the first value that is not missing (``None`` or NaN), or ``len(values)``."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        hit = np.flatnonzero(~np.isnan(values))
        return int(hit[0]) if len(hit) else len(values)
    return next((i for i, v in enumerate(values) if as_label(v) is not None), len(values))


def _stop(usable: np.ndarray, wanted: int) -> int:
    """How many values to take so that ``wanted`` usable ones are taken (all of them if there are fewer)."""
    if len(usable) < wanted:  # (the common case: no need to count)
        return len(usable)
    count = np.cumsum(usable)
    if not len(count) or count[-1] < wanted:
        return len(usable)
    return int(np.searchsorted(count, wanted)) + 1
