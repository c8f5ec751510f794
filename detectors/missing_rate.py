"""Data quality: the share of events in which a feature is missing, or has the wrong type."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, Hysteresis, RingSum, as_times

__all__ = ["MissingRateMonitor", "RateMonitor", "TypeChangeMonitor"]


def _no_times() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


# Placeholders: the ring is built when the first block closes (a monitor in its baseline, as every new
# feature's is, costs and checkpoints no window), the rule by __post_init__ (once, not twice). A decoded
# checkpoint brings its own.
_NO_RING = RingSum(0)
_NO_RULE = Hysteresis(0.1)


@dataclass
class RateMonitor:
    """Rolling rate of a flag (missing, wrong type) against its baseline rate.

    The first ``baseline_size`` flags set the baseline rate (or ``expected_rate``
    gives it, say from a reference profile). Later flags fill blocks of
    ``check_every``; the rolling window is the last ``window // check_every``
    whole blocks, judged as each block closes. The condition holds when the
    rolling rate exceeds the baseline rate by at least ``min_jump`` with a
    binomial z-score of at least ``min_z`` (:class:`~detectors.base.Hysteresis`),
    and clears below half that jump.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> flags = rng.random(5000) < np.where(np.arange(5000) < 3000, 0.02, 0.25)
    >>> monitor = MissingRateMonitor("income")
    >>> [(c.index, c.active) for c in monitor.update_many(flags, np.arange(5000.0))]
    [(3251, True)]
    >>> round(monitor.rate, 2)
    0.27
    """

    name: str
    baseline_size: int = 500
    window: int = 500
    min_jump: float = 0.10
    min_z: float = 4.0
    check_every: int = 16
    detector: str = "missing_rate"
    what: str = "missing"
    expected_rate: float | None = None
    n: int = 0
    flagged: int = 0
    baseline_flagged: int = 0
    blocks: RingSum = field(default_factory=lambda: _NO_RING)  # flags per closed block, the window's
    block_starts: np.ndarray = field(default_factory=_no_times)  # event time of each closed block's first value
    block: int = 0  # flags in the block being filled
    block_n: int = 0
    block_start: float = 0.0
    rule: Hysteresis = field(default_factory=lambda: _NO_RULE)
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.rule is _NO_RULE:
            self.rule = Hysteresis(self.min_jump, self.min_z)
        if self.blocks is _NO_RING:
            self.blocks = RingSum(0)  # its own: an instance is never shared
        elif self.blocks.size not in (0, self._slots()):
            self._start_window()

    def _slots(self) -> int:
        return max(self.window // self.check_every, 1)

    def _start_window(self) -> None:
        """The ring of the rolling window's blocks: built as the first block closes, rebuilt if ``window`` moved."""
        slots = self._slots()
        self.blocks = RingSum(slots)
        self.block_starts = np.zeros(slots, dtype=np.float64)

    # -- reading -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.rule.active

    @property
    def missing(self) -> int:
        """Flags counted since the start (for a missing-rate monitor, missing values)."""
        return self.flagged

    @property
    def recent_n(self) -> int:
        """Values in the rolling window: whole blocks of ``check_every``, about ``window`` of them."""
        return self.blocks.n * self.check_every

    @property
    def rate(self) -> float:
        """The rolling rate (the baseline rate while the baseline fills)."""
        return self.blocks.total / self.recent_n if self.blocks.n else self.baseline_rate

    @property
    def baseline_rate(self) -> float:
        if self.expected_rate is not None:
            return self.expected_rate
        return self.baseline_flagged / max(min(self.n, self.baseline_size), 1)

    def set_min_jump(self, min_jump: float) -> None:
        """Take a new smallest jump that alerts, from the next decision on."""
        self.min_jump = self.rule.bound = min_jump

    # -- updating ------------------------------------------------------------------------

    def update(self, flag: bool, ts: float) -> None:
        """Record one event: flagged (missing, wrong type) or not."""
        self.update_many(np.array([flag]), np.array([ts], dtype=np.float64))

    def baseline_pending(self, n: int) -> bool:
        """Whether the next ``n`` flags all go to the baseline (and so can change nothing)."""
        return self.expected_rate is None and self.n + n <= self.baseline_size

    def count_baseline(self, n: int, last_ts: float) -> None:
        """:meth:`update_many` of ``n`` flags, none set, that all go to the baseline."""
        self.n += n
        self.last_ts = last_ts

    def update_many(self, flags: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Record events in order; return where the condition started or stopped holding."""
        flags = np.asarray(flags, dtype=bool)
        times = as_times(ts, len(flags))
        if not len(flags):
            return []
        self.n += len(flags)
        self.flagged += int(np.count_nonzero(flags))
        self.last_ts = float(times[-1])
        start = 0
        if self.expected_rate is None and self.n - len(flags) < self.baseline_size:
            start = min(len(flags), self.baseline_size - (self.n - len(flags)))
            self.baseline_flagged += int(np.count_nonzero(flags[:start]))
        changes: list[Change] = []
        while start < len(flags):
            start = self._fill(flags, times, start, changes)
        return changes

    def _fill(self, flags: np.ndarray, times: np.ndarray, start: int, changes: list[Change]) -> int:
        """Close the blocks that ``flags[start:]`` completes, up to the first change; return where it stopped."""
        if self.block_n == 0:
            self.block_start = float(times[start])
        need = self.check_every - self.block_n
        if len(flags) - start < need:  # the open block stays open
            self.block += int(np.count_nonzero(flags[start:]))
            self.block_n += len(flags) - start
            return len(flags)
        if self.blocks.size == 0:
            self._start_window()
        # the open block, then every whole block the batch holds, each judged as it closes
        ends = np.arange(start + need, len(flags) + 1, self.check_every)
        counts = np.add.reduceat(flags[start : ends[-1]].astype(np.int64), np.concatenate(([0], ends[:-1] - start)))
        counts[0] += self.block
        firsts = np.concatenate(([self.block_start], times[ends[:-1]]))
        flip = self._first_flip(counts)
        last = len(counts) - 1 if flip < 0 else flip
        ring = self.blocks
        lo = max(last + 1 - ring.size, 0)  # blocks before ``lo`` are overwritten within the batch
        self.block_starts[(ring.head + np.arange(lo, last + 1)) % ring.size] = firsts[lo : last + 1]
        ring.extend(counts[: last + 1].astype(np.float64))
        self.block = self.block_n = 0
        self.block_start = 0.0  # no block is open
        stop = int(ends[last])
        if flip >= 0:
            self.rule.active = not self.rule.active
            changes.append(Change(stop - 1, self.rule.active, self.evidence(float(times[stop - 1]))))
        return stop

    def _first_flip(self, counts: np.ndarray) -> int:
        """Index of the first closing block whose decision flips the condition, or -1."""
        ring = self.blocks
        if not self.rule.active and self._cannot_fire(counts):
            return -1
        totals = np.cumsum(np.concatenate((ring.oldest(), counts.astype(np.float64))))
        ends = np.arange(ring.n, ring.n + len(counts))
        sizes = np.minimum(ends + 1, ring.size)
        in_window = totals[ends] - np.where(ends >= sizes, totals[np.maximum(ends - sizes, 0)], 0.0)
        recent = sizes * self.check_every
        base = self.baseline_rate
        jump = in_window / recent - base
        p = min(max(base, 1.0 / self.baseline_size), 0.5)
        z = jump / np.sqrt(p * (1 - p) / recent)
        judged = recent >= min(self.window, 200)
        held = np.inf if self.rule.active else -np.inf  # an unjudged block keeps the condition as it is
        return self.rule.first_change(np.where(judged, jump, held), np.where(judged, z, 0.0))

    def _cannot_fire(self, counts: np.ndarray) -> bool:
        """Whether no judged block of ``counts`` can reach the jump, by a bound (the common, quiet case).

        A window holds at most the ring's total plus the new counts, over at
        least the smallest judged window: its rate can't exceed that ratio.
        """
        ring = self.blocks
        smallest = max(min(ring.n + 1, ring.size) * self.check_every, min(self.window, 200))
        most = (ring.total + float(counts.sum())) / smallest
        return bool(most - self.baseline_rate < self.rule.bound)

    def evidence(self, at: float | None = None) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        jump = self.rate - self.baseline_rate
        severity = "critical" if jump >= 3 * self.min_jump else "warning"
        every = self.blocks.n and self.blocks.total == self.recent_n
        share = "every one" if every else f"{self.rate:.1%}"
        gone = " (the feature has disappeared)" if every and self.detector == "missing_rate" else ""
        message = (
            f"{self.name}: {self.what} in {share} of the last {self.recent_n} events "
            f"(baseline {self.baseline_rate:.1%}){gone}"
        )
        end = self.last_ts if at is None else float(at)
        ring = self.blocks
        oldest = float(self.block_starts[ring.head if ring.count >= ring.size else 0]) if ring.n else end
        return Evidence(
            "data_quality",
            self.name,
            self.detector,
            round(self.rate, 6),
            round(self.baseline_rate + self.min_jump, 6),
            self.recent_n,
            oldest,
            end,
            severity,
            message,
        )


@dataclass
class MissingRateMonitor(RateMonitor):
    """The rolling share of events in which a feature is null or absent.

    >>> monitor = MissingRateMonitor("age", baseline_size=100)
    >>> monitor.update_many(np.arange(300) % 10 == 0, np.arange(300.0))
    []
    >>> round(monitor.rate, 2), monitor.missing
    (0.1, 30)
    """

    detector: str = "missing_rate"
    what: str = "missing"


@dataclass
class TypeChangeMonitor(RateMonitor):
    """The rolling share of a feature's values that have the other type (text for a number, say).

    >>> monitor = TypeChangeMonitor("age", baseline_size=100, what="text instead of numbers")
    >>> changes = monitor.update_many(np.arange(1000) >= 400, np.arange(1000.0))
    >>> [(c.index, c.active, c.evidence.detector) for c in changes]
    [(435, True, 'type_change')]
    """

    detector: str = "type_change"
    what: str = "values of another type"
