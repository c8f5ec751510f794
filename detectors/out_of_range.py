"""Data quality: the share of a feature's values far outside its reference range."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, Hysteresis, as_times

__all__ = ["RangeMonitor"]


@dataclass
class RangeMonitor:
    """The share of a feature's values far outside its reference range, judged per window of values.

    "Far outside" is beyond the reference's [min, max] by more than its
    interquartile range, ``[low, high]``: broken units, sentinels such as -999,
    garbage; a wider spread is data drift, not this. A fresh sample from the
    reference falls outside the range of ``n`` reference values with
    probability 2 / (n + 1), the rate assumed here (``expected``). Values fill
    tumbling windows of ``window``; the condition starts when a window's share
    exceeds ``expected`` by ``min_jump`` with a binomial z-score of at least
    ``min_z``, and clears on a window below half the jump.

    >>> rng = np.random.default_rng(4)
    >>> monitor = RangeMonitor("price", low=0.0, high=100.0, expected=0.001, window=500)
    >>> prices = np.where(np.arange(3000) < 2000, 50.0, np.where(rng.random(3000) < 0.3, 5000.0, 50.0))
    >>> [(c.index, c.active, c.evidence.detector) for c in monitor.update_many(prices, np.arange(3000.0))]
    [(2499, True, 'out_of_range')]
    """

    name: str
    low: float
    high: float
    expected: float
    min_jump: float = 0.10
    min_z: float = 4.0
    window: int = 500
    fill: int = 0  # values in the window being filled
    outside: int = 0  # ... of which outside the range
    start_ts: float = 0.0
    rate: float = 0.0  # the last judged window's share outside
    n: int = 0
    judged: tuple[float, float] = (0.0, 0.0)  # event times of the last judged window
    rule: Hysteresis = field(default_factory=lambda: Hysteresis(0.1))

    def __post_init__(self) -> None:
        self.rule.bound, self.rule.min_z = self.min_jump, self.min_z

    @property
    def active(self) -> bool:
        return self.rule.active

    def update(self, x: float, ts: float) -> None:
        self.update_many(np.array([x], dtype=np.float64), np.array([ts], dtype=np.float64))

    def update_many(self, values: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Add finite values in order; return where the condition started or stopped holding."""
        values = np.asarray(values, dtype=np.float64)
        times = as_times(ts, len(values))
        changes: list[Change] = []
        done = 0
        far = (values < self.low) | (values > self.high)
        while done < len(values):
            if self.fill == 0:
                self.start_ts = float(times[done])
            take = min(self.window - self.fill, len(values) - done)
            self.outside += int(np.count_nonzero(far[done : done + take]))
            self.fill += take
            done += take
            if self.fill == self.window and self._judge(float(times[done - 1])):
                changes.append(Change(done - 1, self.active, self.evidence()))
        return changes

    def _judge(self, end: float) -> bool:
        """Judge the full window; return whether the condition changed."""
        n = self.fill
        self.rate, self.n, self.judged = self.outside / n, n, (self.start_ts, end)
        self.fill = self.outside = 0
        jump = self.rate - self.expected
        p = min(max(self.expected, 1.0 / n), 0.5)
        return self.rule.step(jump, jump / math.sqrt(p * (1 - p) / n))

    def evidence(self) -> Evidence:
        severity = "critical" if self.rate - self.expected >= 3 * self.min_jump else "warning"
        message = (
            f"{self.name}: {self.rate:.1%} of the last {self.n} values far outside the reference range "
            f"(below {self.low:.4g} or above {self.high:.4g}; expected {self.expected:.2%})"
        )
        return Evidence(
            "data_quality",
            self.name,
            "out_of_range",
            round(self.rate, 6),
            round(self.expected + self.min_jump, 6),
            self.n,
            self.judged[0],
            self.judged[1],
            severity,
            message,
        )
