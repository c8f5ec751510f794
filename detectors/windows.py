"""Small exact pieces of state shared by the label monitors: moments, a ring of recent values, a window's start.

A running sum over a rolling window is :class:`~detectors.base.RingSum`; the
pieces here keep what it does not:

- :class:`RunningMoments`: count, mean and standard deviation of a stream.
- :class:`Ring`: the last ``size`` values of a stream in a small dtype (class
  indices, 0/1 flags), for windows whose sums are read rarely enough to be
  counted when asked.
- :class:`WindowClock`: the event time at which a rolling window starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.base import grown

__all__ = ["Ring", "RunningMoments", "WindowClock", "add_in_order", "all_finite"]


def _no_values() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class RunningMoments:
    """Count, mean and standard deviation of a stream (Welford's algorithm).

    >>> m = RunningMoments()
    >>> m.update_many(np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]))
    >>> m.n, m.mean, round(m.std, 3)
    (8, 5.0, 2.138)
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def update_many(self, xs: np.ndarray) -> None:
        """Add values in order (value by value: Welford's update is sequential)."""
        for x in np.asarray(xs, dtype=np.float64).tolist():
            self.update(x)

    @property
    def std(self) -> float:
        """Sample standard deviation (0 until two values are seen)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass
class Ring:
    """The last ``size`` values of a stream, in a flat array of ``dtype`` that grows in the first lap.

    Slot ``i % size`` holds value ``i``, so the layout depends only on the
    count of values pushed: a sum over :meth:`window` is the same whatever
    the split of the stream into batches. Float rings start as NaN, integer
    and boolean rings as 0. A ring created late (``count`` set to the values
    it missed) keeps its slots aligned with a ring that saw them all.

    >>> ring = Ring(3, "int8")
    >>> ring.push_many(np.array([1, 0, 1, 1]))
    >>> ring.n, ring.oldest().tolist(), int(np.count_nonzero(ring.window()))
    (3, [0, 1, 1], 2)
    """

    size: int
    dtype: str = "float64"
    values: np.ndarray = field(default_factory=_no_values)
    count: int = 0  # values pushed since the start

    @property
    def n(self) -> int:
        """Values in the window (at most ``size``)."""
        return min(self.count, self.size)

    def window(self) -> np.ndarray:
        """The window's values in slot order (not oldest first), as a view."""
        if not len(self.values) or len(self.values) < self.n:  # nothing pushed yet (or a ring created late)
            return self._blank()[: self.n]
        return self.values[: self.n]

    def oldest(self) -> np.ndarray:
        """The window's values, oldest first."""
        if self.count <= self.size:
            return self.window().copy()
        return np.roll(self.values, -(self.count % self.size))

    def _blank(self) -> np.ndarray:
        if np.issubdtype(np.dtype(self.dtype), np.floating):
            return np.full(self.size, np.nan, dtype=self.dtype)
        return np.zeros(self.size, dtype=self.dtype)

    def _room(self, k: int) -> None:
        """Slots for ``k`` more values: in the first lap the array grows as values come, 1.5 times at a time.

        The room depends on the count alone, so a ring created late (nothing pushed, its slots blank)
        grows as one that saw every value."""
        blank = np.nan if np.issubdtype(np.dtype(self.dtype), np.floating) else 0
        self.values = grown(self.values, min(self.count + k, self.size), self.size, blank, self.dtype)

    def push_many(self, x: np.ndarray | Sequence[float]) -> None:
        """Push values in order; the oldest leave once ``size`` are held."""
        k, size = len(x), self.size
        if not k:
            return
        self._room(k)
        tail = x[k - size :] if k > size else x  # earlier values of a long batch are overwritten anyway
        first = (self.count + k - len(tail)) % size
        end = first + len(tail)
        if end <= size:
            self.values[first:end] = tail
        else:
            self.values[first:] = tail[: size - first]
            self.values[: end - size] = tail[size - first :]
        self.count += k


def all_finite(values: np.ndarray) -> bool:
    """Whether no value is NaN or infinite (a short column is checked in Python, faster than numpy there).

    >>> all_finite(np.array([1.0, 2.0])), all_finite(np.array([1.0, np.inf]))
    (True, False)
    """
    if len(values) <= 16:
        return all(map(math.isfinite, values.tolist()))
    return bool(np.count_nonzero(np.isfinite(values)) == len(values))


def add_in_order(total: float, values: np.ndarray | list[float]) -> float:
    """``total`` plus each value in turn, rounded as a value-by-value ``total += x`` rounds.

    ``np.cumsum`` accumulates sequentially, so any split of the values gives
    the same result; a short batch is added in Python, with the same roundings.

    >>> add_in_order(1.0, np.array([1e-16] * 10)) == 1.0, add_in_order(0.0, np.arange(100.0))
    (True, 4950.0)
    """
    if len(values) <= 16:
        for x in values.tolist() if isinstance(values, np.ndarray) else values:
            total += x
        return total
    return float(np.cumsum(np.concatenate(([total], values)))[-1])


@dataclass
class WindowClock:
    """Event time at which a rolling window of ``size`` values starts, to ``every`` values.

    The event time of every ``every``-th value is kept, the last
    ``ceil(size / every) + 1`` of them: the oldest is never after the window's
    first value, and fewer than ``2 * every`` values before it (``every`` when
    ``size`` is a multiple of it). Marks sit at absolute positions, so any
    split of the stream into batches keeps the same ones.

    >>> clock = WindowClock(size=100, every=10)
    >>> clock.tick_many(np.arange(1000.0))
    >>> clock.start
    890.0
    """

    size: int
    every: int = 16
    count: int = 0  # values ticked
    marks: np.ndarray = field(default_factory=_no_values)  # value j * every's event time in slot j % len(marks)

    @property
    def slots(self) -> int:
        return -(-self.size // self.every) + 1

    def tick(self, ts: float) -> None:
        self.tick_many(np.array([ts], dtype=np.float64))

    def tick_many(self, ts: np.ndarray) -> None:
        """Take the event times of the next values, in order."""
        first = -self.count % self.every  # the first of them at a multiple of ``every``
        if first < len(ts):
            new = ts[first :: self.every]
            if len(self.marks) != self.slots:
                self.marks = np.zeros(self.slots, dtype=np.float64)
            done = -(-self.count // self.every)  # marks taken before these
            kept = new[-self.slots :]
            self.marks[(done + len(new) - len(kept) + np.arange(len(kept))) % self.slots] = kept
        self.count += len(ts)

    @property
    def start(self) -> float:
        """The oldest kept mark (0 before any value)."""
        done = -(-self.count // self.every)
        if not done:
            return 0.0
        return float(self.marks[done % self.slots] if done > self.slots else self.marks[0])
