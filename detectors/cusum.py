"""Page's CUSUM against a reference: the fastest test for a lasting shift in a feature's level.

With the pre-change distribution known, CUSUM is optimal for detecting a shift
of the size it is tuned for (Lorden 1971): no test with the same false-alarm
rate detects it sooner on average. Values are first turned into normal scores
against the reference (:class:`detectors.normal_scores.NormalScores`), so one
calibration holds for normal, skewed, bounded and discrete features alike.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from detectors.alerts import Evidence
from detectors.cusum_calibration import SKETCH_SAMPLES, thresholds
from detectors.normal_scores import NormalScores
from detectors.reference import NumericProfile, build_profile  # noqa: F401 (build_profile: doctest)

SHIFTS = (0.1, 0.25, 0.5, 1.0)  # shifts (reference std) the bank is tuned for: one CUSUM each, k = shift / 2


def _zeros() -> np.ndarray:
    return np.zeros(len(SHIFTS), dtype=np.float64)


def _sums() -> np.ndarray:
    return np.zeros(2 * len(SHIFTS), dtype=np.float64)


@dataclass
class MeanShiftCusum:
    """Two-sided CUSUMs tuned to shifts of 0.1, 0.25, 0.5 and 1 reference std, calibrated to a budget.

    Each value's normal score ``z`` feeds ``S+ = max(0, S+ + z - k)`` and
    ``S- = max(0, S- - z - k)`` for ``k`` = half of each tuned shift. The
    condition starts when some sum crosses its threshold ``h``, chosen so that
    the whole bank raises one false alarm per ``budget_events`` values on
    average (:func:`detectors.cusum_calibration.thresholds`, which counts the
    reference's own sampling error). ``k`` is the effect-size floor: a sum only
    grows while the recent mean sits more than ``k`` away from the reference.
    It clears after ``clear_after`` windows of ``clear_window`` values whose
    mean score lies within :attr:`clear_bound` of zero; the sums then restart.
    Values are scored in chunks of ``chunk`` (numpy), with the same sums as one at a time.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> cusum = MeanShiftCusum("age", build_profile(rng.normal(40, 6, 10_000)), budget_events=2e7)
    >>> for i in range(4000):
    ...     cusum.update(rng.normal(40 if i < 2000 else 43, 6), float(i))  # 0.5 sigma shift at 2000
    ...     if cusum.active:
    ...         break
    >>> i, cusum.evidence().detector, round(cusum.shift, 1)
    (2127, 'cusum', 0.6)
    """

    name: str | None
    profile: NumericProfile
    kind: str = "data_drift"
    budget_events: float = 1e6
    chunk: int = 16
    clear_window: int = 500
    clear_after: int = 2
    h: np.ndarray = field(default_factory=_zeros)
    sums: np.ndarray = field(default_factory=_sums)  # upper sums (one per shift), then lower sums
    run_start: np.ndarray = field(default_factory=_sums)  # value index where each sum last left zero
    buffer: list[float] = field(default_factory=list)
    n: int = 0
    active: bool = False
    shift: float = 0.0  # estimated shift (reference std, signed) when the condition started
    fired: tuple[int, float, float, int] = (0, 0.0, 0.0, 0)  # CUSUM index (upper sums first), sum, threshold, run length
    fired_at: int = 0  # values seen when the condition started
    clear_sum: float = 0.0
    clear_n: int = 0
    clean: int = 0
    buffer_ts: float = 0.0
    chunk_ts: list[float] = field(default_factory=list)  # event time of each recent chunk's first value
    chunk_n: list[int] = field(default_factory=list)  # ... and its index in the stream
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if not self.h.any():
            self.h = thresholds(np.asarray(SHIFTS) / 2, self.budget_events, self.profile.sample_size)
        self._after_restore()

    def set_budget(self, budget_events: float) -> None:
        """Recalibrate the thresholds to a new budget; the sums carry on."""
        self.budget_events = budget_events
        self.h = thresholds(np.asarray(SHIFTS) / 2, budget_events, self.profile.sample_size)
        self._after_restore()

    def _after_restore(self) -> None:
        """Rebuild what derives from the profile and thresholds (never checkpointed)."""
        k = np.asarray(SHIFTS) / 2
        self.scores = NormalScores(self.profile)
        self._signs = np.repeat([1.0, -1.0], len(k))[:, None]
        self._k2 = np.tile(k, 2)[:, None]
        self.h2 = np.tile(self.h, 2)

    @property
    def clear_bound(self) -> float:
        """A window's mean score within this of zero is clean: 0.125 std, or three standard errors
        of the window and reference means if larger (so a rough reference cannot hold an episode open)."""
        n_ref = min(max(self.profile.sample_size, 2), SKETCH_SAMPLES)
        return max(SHIFTS[1] / 2, 3.0 * math.sqrt(1.0 / self.clear_window + 1.0 / n_ref))

    @property
    def progress(self) -> float:
        """How far the largest sum has come towards its threshold (1: the condition starts)."""
        return float((self.sums / self.h2).max())

    def update(self, x: float, ts: float) -> None:
        """Add one finite value with its event time (Unix seconds); scored once ``chunk`` are buffered."""
        if not self.buffer:
            self.buffer_ts = ts
        self.buffer.append(x)
        if len(self.buffer) >= self.chunk:
            values, self.buffer = np.asarray(self.buffer, dtype=np.float64), []
            self.update_many(values, self.buffer_ts, ts)

    def update_many(self, values: np.ndarray, first_ts: float, last_ts: float) -> None:
        """Add finite values in stream order, with the event times of the first and the last."""
        if not len(values):
            return
        self.chunk_ts.append(first_ts)
        self.chunk_n.append(self.n)
        if len(self.chunk_ts) > 4096:
            del self.chunk_ts[:2048], self.chunk_n[:2048]
        self.last_ts = last_ts
        z = self.scores.transform(values, self.n)
        if self.active:
            self._clearing(z)
        else:
            self._accumulate(z)
        self.n += len(z)

    def _ts_of(self, index: int) -> float:
        """Event time of the first value of the chunk holding value ``index`` (the oldest kept if older)."""
        i = bisect.bisect_right(self.chunk_n, index) - 1
        return self.chunk_ts[max(i, 0)] if self.chunk_ts else self.last_ts

    def _accumulate(self, z: np.ndarray) -> None:
        c = np.cumsum(self._signs * z - self._k2, axis=1)  # upper sums, then lower sums
        floor = -self.sums
        low = np.minimum(np.minimum.accumulate(c, axis=1), floor[:, None])
        s = c - low
        if (s.max(axis=1) > self.h2).any():
            self._fire(s, s <= 0.0)
        # A sum is zero right after its running minimum; the last such index starts the current run.
        last = len(z) - 1 - np.argmin(c[:, ::-1], axis=1)
        self.run_start = np.where(low[:, -1] < floor, self.n + last + 1, self.run_start)
        self.sums = s[:, -1].copy()

    def _fire(self, s: np.ndarray, at_zero: np.ndarray) -> None:
        crossed = s > self.h2[:, None]
        first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), s.shape[1])
        row = int(first.argmin())
        t = int(first[row])
        zeros = np.flatnonzero(at_zero[row, :t])
        begin = self.n + int(zeros[-1]) + 1 if len(zeros) else int(self.run_start[row])
        run = self.n + t + 1 - begin
        m = len(SHIFTS)
        sign = 1.0 if row < m else -1.0
        self.shift = sign * (float(s[row, t]) / run + SHIFTS[row % m] / 2)
        self.fired = (row, float(s[row, t]), float(self.h[row % m]), run)
        self.fired_at = self.n + t + 1
        self.active = True

    def _clearing(self, z: np.ndarray) -> None:
        self.clear_sum += float(z.sum())
        self.clear_n += len(z)
        if self.clear_n < self.clear_window:
            return
        window_mean = self.clear_sum / self.clear_n
        self.clean = self.clean + 1 if abs(window_mean) < self.clear_bound else 0
        self.clear_sum, self.clear_n = 0.0, 0
        if self.clean >= self.clear_after:
            self.active, self.clean = False, 0
            self.sums = _sums()
            self.run_start = np.full(2 * len(SHIFTS), float(self.n + len(z)))

    def evidence(self) -> Evidence:
        """The decision that started the condition, with the latest window's mean score."""
        index, total, bound, run = self.fired
        label = self.name if self.name is not None else "score"
        direction = "up" if self.shift >= 0 else "down"
        tuned = SHIFTS[index % len(SHIFTS)]
        message = (
            f"{label}: level shifted {direction} {abs(self.shift):.2f} reference std over {run} values "
            f"(CUSUM tuned to {tuned:g} std: {total:.1f} > threshold {bound:.1f})"
        )
        severity = "critical" if abs(self.shift) >= 1.0 else "warning"
        return Evidence(
            self.kind, self.name, "cusum", round(total, 6), round(bound, 6), run,
            self._ts_of(self.fired_at - run), self.last_ts, severity, message,
        )
