"""Data quality: the share of events in which a feature is missing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectors.alerts import Evidence


@dataclass
class MissingRateMonitor:
    """Rolling missing rate of one feature against its baseline rate.

    A value is missing when it is ``null`` or the event lacks the feature. The
    condition holds when the rolling rate exceeds the baseline rate by at least
    ``min_jump`` with a binomial z-score of at least ``min_z``; it clears below
    half that jump. The rolling window is made of whole blocks of
    ``check_every`` values, the rate judged at the end of each block. With ``expected_rate`` the baseline rate is that known
    rate (say, from a reference profile) instead of the first values' rate.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> monitor = MissingRateMonitor("income")
    >>> for i in range(5000):
    ...     monitor.update(rng.random() < (0.02 if i < 3000 else 0.25), float(i))
    ...     if monitor.active:
    ...         break
    >>> i, round(monitor.rate, 2)
    (3219, 0.12)
    """

    name: str
    baseline_size: int = 500
    window: int = 500
    min_jump: float = 0.10
    min_z: float = 4.0
    check_every: int = 16
    detector: str = "missing_rate"  # the same test serves for other rates: "type_change"
    what: str = "missing"
    expected_rate: float | None = None
    n: int = 0
    missing: int = 0
    baseline_missing: int = 0
    blocks: list[int] = field(default_factory=list)  # flags per block of check_every values, the window's
    block_ts: list[float] = field(default_factory=list)  # event time of each block's first value
    in_window: int = 0  # flags set in the window's blocks
    block: int = 0  # flags set in the block being filled
    block_n: int = 0
    block_start: float = 0.0
    active: bool = False
    last_ts: float = 0.0

    @property
    def recent_n(self) -> int:
        """Values in the rolling window: whole blocks of ``check_every``, about ``window`` of them."""
        return len(self.blocks) * self.check_every

    @property
    def rate(self) -> float:
        """The rolling rate (the baseline rate while the baseline fills)."""
        return self.in_window / self.recent_n if self.blocks else self.baseline_rate

    @property
    def baseline_rate(self) -> float:
        if self.expected_rate is not None:
            return self.expected_rate
        return self.baseline_missing / max(min(self.n, self.baseline_size), 1)

    def update(self, is_missing: bool, ts: float) -> None:
        """Record whether the feature was missing in one event."""
        self.n += 1
        self.missing += is_missing
        self.last_ts = ts
        if self.n <= self.baseline_size and self.expected_rate is None:
            self.baseline_missing += is_missing
            return
        if self.block_n == 0:
            self.block_start = ts
        self.block += is_missing
        self.block_n += 1
        if self.block_n == self.check_every:
            self._close_block()

    def _close_block(self) -> None:
        self.blocks.append(self.block)
        self.block_ts.append(self.block_start)
        self.in_window += self.block
        if len(self.blocks) > max(self.window // self.check_every, 1):
            self.in_window -= self.blocks.pop(0)
            del self.block_ts[0]
        self.block = self.block_n = 0
        self._check()

    def _check(self) -> None:
        n = self.recent_n
        if n < min(self.window, 200):
            return
        base = self.baseline_rate
        jump = self.rate - base
        p = min(max(base, 1.0 / self.baseline_size), 0.5)
        z = jump / math.sqrt(p * (1 - p) / n)
        if self.active:
            self.active = jump >= self.min_jump / 2
        else:
            self.active = jump >= self.min_jump and z >= self.min_z

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        jump = self.rate - self.baseline_rate
        severity = "critical" if jump >= 3 * self.min_jump else "warning"
        share = "every one" if self.blocks and self.in_window == self.recent_n else f"{self.rate:.1%}"
        gone = " (the feature has disappeared)" if share == "every one" and self.detector == "missing_rate" else ""
        message = (
            f"{self.name}: {self.what} in {share} of the last {self.recent_n} events "
            f"(baseline {self.baseline_rate:.1%}){gone}"
        )
        return Evidence(
            "data_quality", self.name, self.detector, round(self.rate, 6),
            round(self.baseline_rate + self.min_jump, 6), self.recent_n,
            self.block_ts[0] if self.block_ts else self.last_ts, self.last_ts, severity, message,
        )
