"""Small exact running statistics shared by the monitors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RunningMoments:
    """Count, mean and standard deviation of a stream (Welford's algorithm).

    >>> m = RunningMoments()
    >>> for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]:
    ...     m.update(x)
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

    @property
    def std(self) -> float:
        """Sample standard deviation (0 until two values are seen)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass
class RollingMean:
    """Exact mean of the last ``size`` values, in O(1) per update.

    >>> r = RollingMean(size=3)
    >>> for x in [1, 0, 1, 1]:
    ...     r.update(x)
    >>> r.n, round(r.mean, 3)
    (3, 0.667)
    """

    size: int
    values: list[float] = field(default_factory=list)
    head: int = 0
    total: float = 0.0

    def update(self, x: float) -> None:
        if len(self.values) < self.size:
            self.values.append(x)
        else:
            self.total -= self.values[self.head]
            self.values[self.head] = x
            self.head = (self.head + 1) % self.size
        self.total += x
        if self.head == 0 and len(self.values) == self.size:
            self.total = math.fsum(self.values)  # once per lap, so float error never builds up

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        if not self.values:
            return 0.0
        return self.total / len(self.values)


@dataclass
class WindowClock:
    """Event time at which a rolling window of ``size`` values starts, to ``every`` values.

    >>> clock = WindowClock(size=100, every=10)
    >>> for i in range(1000):
    ...     clock.tick(float(i))
    >>> clock.start
    890.0
    """

    size: int
    every: int = 16
    count: int = 0
    marks: list[float] = field(default_factory=list)

    def tick(self, ts: float) -> None:
        if self.count % self.every == 0:
            self.marks.append(ts)
            if len(self.marks) > self.size // self.every + 1:
                del self.marks[0]
        self.count += 1

    @property
    def start(self) -> float:
        return self.marks[0] if self.marks else 0.0
