"""The detector interface, and the pieces every detector shares.

A detector takes a batch of values (a numpy column) with their event times,
and says where in the batch its condition started or stopped holding: a list
of :class:`Change`. A batch update is exact: any split of a stream into
batches gives the same changes, at the same values, and the same final state,
as feeding the values one at a time. ``river.base.DriftDetector`` is the model
for the shape of the interface (``update``, then a flag), extended to batches.

Shared pieces, written once here:

- :class:`Hysteresis`: fire when an effect reaches its bound with a z-score of
  at least ``min_z``; clear when it falls below half the bound.
- :class:`RingSum`: the exact sum of the last ``size`` values of a stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from detectors.alerts import Evidence

__all__ = ["Change", "Detector", "Hysteresis", "RingSum", "as_times"]


@dataclass(frozen=True, slots=True)
class Change:
    """A detector's condition started (``active``) or stopped holding at value ``index`` of a batch.

    ``evidence`` is the detector's measurement right after that value.

    >>> e = Evidence("data_quality", "x", "missing_rate", 0.3, 0.12, 496, 0.0, 9.0, "warning", "x: missing")
    >>> Change(17, True, e).active
    True
    """

    index: int
    active: bool
    evidence: Evidence


@runtime_checkable
class Detector(Protocol):
    """What every detector offers: a batch update, its condition, and its evidence.

    ``update_many(values, ts)`` takes values in stream order with their event
    times (Unix seconds, non-decreasing) and returns the changes of
    :attr:`active` within the batch, in order. Detectors with several input
    columns (a score and a class, say) name their batch methods for their
    inputs, with the same contract.
    """

    @property
    def active(self) -> bool: ...

    def evidence(self) -> Evidence: ...

    def update_many(self, values: np.ndarray, ts: np.ndarray) -> list[Change]: ...


def as_times(ts: np.ndarray | float, n: int) -> np.ndarray:
    """Event times as a float64 column of length ``n`` (a scalar is repeated).

    >>> as_times(3.0, 2).tolist()
    [3.0, 3.0]
    """
    out = np.asarray(ts, dtype=np.float64)
    return np.full(n, float(out)) if out.ndim == 0 else out


@dataclass
class Hysteresis:
    """Fire when ``effect >= bound`` and ``z >= min_z``; once active, clear when ``effect < bound / 2``.

    The rule, shared by every rate and metric monitor, keeps an alert from
    flapping around its threshold. :meth:`first_change` finds the next flip
    in a column of decisions at once.

    >>> h = Hysteresis(bound=0.1)
    >>> h.first_change(np.array([0.05, 0.12, 0.2]), np.array([9.0, 3.0, 5.0]))
    2
    >>> h.step(0.2, 5.0), h.active, h.step(0.06, 0.0), h.active
    (True, True, False, True)
    """

    bound: float
    min_z: float = 4.0
    active: bool = False

    def holds(self, effect: float, z: float) -> bool:
        """Whether the condition holds after a decision with this effect and z-score."""
        if self.active:
            return effect >= self.bound / 2
        return effect >= self.bound and z >= self.min_z

    def step(self, effect: float, z: float) -> bool:
        """Take one decision; return whether the condition changed."""
        now = self.holds(effect, z)
        changed = now != self.active
        self.active = now
        return changed

    def first_change(self, effect: np.ndarray, z: np.ndarray) -> int:
        """Index of the first decision that would flip the condition from its current state, or -1."""
        if self.active:
            flips = effect < self.bound / 2
        else:
            flips = (effect >= self.bound) & (z >= self.min_z)
        hit = np.flatnonzero(flips)
        return int(hit[0]) if len(hit) else -1


def room_for(needed: int, limit: int, first: int = 64) -> int:
    """Slots for ``needed`` values in an array that grows 1.5 times at a time from ``first``, up to ``limit``.

    The size depends on ``needed`` alone, so any split of a stream ends with the same state.

    >>> room_for(1, 1000), room_for(65, 1000), room_for(900, 1000)
    (64, 96, 1000)
    """
    size = first
    while size < needed:
        size += size // 2
    return min(size, limit)


def grown(values: np.ndarray, needed: int, limit: int, fill: float = 0.0, dtype: str | None = None) -> np.ndarray:
    """``values`` with room for ``needed`` (:func:`room_for`): the same array if it has it, else a larger one
    that starts with them and holds ``fill`` after.

    >>> grown(np.array([1.0, 2.0]), 3, 100).shape, grown(np.array([1, 2]), 2, 100).tolist()
    ((64,), [1, 2])
    """
    if len(values) >= needed:
        return values
    out = np.full(room_for(needed, limit), fill, dtype=dtype or values.dtype)
    out[: len(values)] = values
    return out


def _zeros() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class RingSum:
    """The exact sum of the last ``size`` values of a stream, in O(1) per value.

    Each value adds ``x - old`` to a running total, and once per lap (when the
    ring wraps) the total is recomputed with ``math.fsum``, so float error
    never builds up. :meth:`push_many` gives the running totals after each
    value of a batch with ``np.cumsum`` from the carried total: numpy
    accumulates sequentially, so every total is bitwise the one a value-by-
    value update gives, whatever the split into batches.

    >>> ring = RingSum(size=3)
    >>> ring.push_many(np.array([1.0, 0.0, 1.0, 1.0])).tolist()
    [1.0, 1.0, 2.0, 2.0]
    >>> ring.n, ring.total, ring.mean
    (3, 2.0, 0.6666666666666666)
    """

    size: int
    values: np.ndarray = field(default_factory=_zeros)
    head: int = 0  # the slot written next
    count: int = 0  # values pushed since the start
    total: float = 0.0

    def __post_init__(self) -> None:
        first_lap = self.count < self.size and self.count <= len(self.values) <= self.size
        if len(self.values) != self.size and not first_lap:
            self.values = np.zeros(self.size, dtype=np.float64)

    def _room(self, upto: int) -> None:
        """Slots up to ``upto``: in its first lap the ring's array grows as values come, 1.5 times at a time."""
        self.values = grown(self.values, upto, self.size)

    @property
    def n(self) -> int:
        """Values in the window (at most ``size``)."""
        return min(self.count, self.size)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.count else 0.0

    def oldest(self) -> np.ndarray:
        """The window's values, oldest first."""
        if self.count < self.size:
            return self.values[: self.count].copy()
        return np.roll(self.values, -self.head)

    def push_many(self, x: np.ndarray) -> np.ndarray:
        """Push values in order; return the window total after each one."""
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(len(x), dtype=np.float64)
        done = 0
        while done < len(x):
            take = min(len(x) - done, self.size - self.head)  # up to the end of this lap
            chunk = x[done : done + take]
            self._room(self.head + take)
            old = self.values[self.head : self.head + take]  # zeros until the first lap is complete
            totals = np.cumsum(np.concatenate(([self.total], chunk - old)))[1:]
            self.values[self.head : self.head + take] = chunk
            self.count += take
            self.head = (self.head + take) % self.size
            self.total = float(totals[-1])
            if self.head == 0:  # a lap ends: resynchronise exactly
                self.total = math.fsum(self.values)
                totals[-1] = self.total
            out[done : done + take] = totals
            done += take
        return out

    def extend(self, x: np.ndarray) -> None:
        """Push values in order, without the totals: the state of :meth:`push_many`, in a few steps however many
        laps the values fill (a lap ends with the exact sum of its values, whatever came before).

        >>> ring = RingSum(size=3)
        >>> ring.extend(np.array([5.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0]))
        >>> ring.n, ring.total, ring.oldest().tolist()
        (3, 3.0, [1.0, 0.0, 2.0])
        """
        x = np.asarray(x, dtype=np.float64)
        first = min(len(x), self.size - self.head)  # the values that end the open lap
        if first == len(x):
            self.push_many(x)
            return
        self.push_many(x[:first])
        rest = x[first:]  # from the start of a lap
        whole = len(rest) // self.size * self.size
        if whole:  # whole laps: the last one's values, and their exact sum
            self._room(self.size)
            self.values[:] = rest[whole - self.size : whole]
            self.count += whole
            self.total = math.fsum(self.values)
        if whole < len(rest):
            self.push_many(rest[whole:])

    def push(self, x: float) -> float:
        """Push one value; return the window total (the arithmetic of :meth:`push_many`, in plain Python)."""
        x = float(x)
        head = self.head
        self._room(head + 1)
        self.total = self.total + (x - float(self.values[head]))
        self.values[head] = x
        self.count += 1
        self.head = head = (head + 1) % self.size
        if head == 0:
            self.total = math.fsum(self.values)
        return self.total
