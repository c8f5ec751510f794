"""Page's CUSUM against a reference: the fastest test for a lasting shift in a feature's level.

With the pre-change distribution known, CUSUM is optimal for detecting a shift
of the size it is tuned for (Lorden 1971): no test with the same false-alarm
rate detects it sooner on average. Values are first turned into normal scores
against the reference (:class:`detectors.normal_scores.NormalScores`), so one
calibration holds for normal, skewed, bounded and discrete features alike.

Batches are exact. The recursion ``S = max(0, S + z - k)`` is computed as a
running sum minus its running minimum, restarted at every ``chunk`` values of
the stream (absolute positions, so the float error stays small and the same
whatever the batches): a batch extends the open chunk from its carried sum
and minimum, then scores whole chunks at once, and the sums are known at the
exact value where one first crosses its threshold.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, as_times
from detectors.cusum_calibration import SKETCH_SAMPLES, thresholds
from detectors.normal_scores import NormalScores
from detectors.reference import NumericProfile, build_profile  # noqa: F401 (build_profile: doctest)

__all__ = ["SHIFTS", "MeanShiftCusum"]

SHIFTS = (0.1, 0.25, 0.5, 1.0)  # shifts (reference std) the bank is tuned for: one CUSUM each, k = shift / 2
_M = len(SHIFTS)
_K = np.asarray(SHIFTS) / 2
_SIGNS = np.repeat([1.0, -1.0], _M)[:, None]  # upper sums, then lower sums
_K2 = np.tile(_K, 2)[:, None]
_K2_LIST = _K2.ravel().tolist()
# Small batches go value by value in plain Python, with the same arithmetic as numpy's (so the same state):
# up to the first size each score too, up to the second the sums only (the scores are one numpy call).
_SCORED_ONE_BY_ONE, _SUMMED_ONE_BY_ONE = 4, 64


@functools.lru_cache(maxsize=256)
def _bank(budget_events: float, sample_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The thresholds per tuned shift, and per sum (upper then lower): shared, read-only."""
    h = thresholds(_K, budget_events, sample_size)
    h2 = np.tile(h, 2)
    h.setflags(write=False)
    h2.setflags(write=False)
    return h, h2


def _zeros() -> list[float]:
    return [0.0] * (2 * _M)


def _first_run() -> list[int]:
    return [0] * (2 * _M)


def _pending() -> list[float]:
    return [math.nan] * (2 * _M)


@dataclass
class MeanShiftCusum:
    """Two-sided CUSUMs tuned to shifts of 0.1, 0.25, 0.5 and 1 reference std, calibrated to a budget.

    Each value's normal score ``z`` feeds ``S+ = max(0, S+ + z - k)`` and
    ``S- = max(0, S- - z - k)`` for ``k`` = half of each tuned shift. The
    condition starts at the value where some sum first crosses its threshold
    ``h``, chosen so that the whole bank raises one false alarm per
    ``budget_events`` values on average (:func:`detectors.cusum_calibration.thresholds`,
    which counts the reference's own sampling error). ``k`` is the effect-size
    floor: a sum only grows while the recent mean sits more than ``k`` away
    from the reference. It clears after ``clear_after`` windows of
    ``clear_window`` values (counted from the value after it started) whose
    mean score lies within :attr:`clear_bound` of zero; the sums then restart.
    Non-finite values are skipped. :meth:`update_many` gives the same changes
    and state for any split of a stream into batches.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> cusum = MeanShiftCusum("age", build_profile(rng.normal(40, 6, 10_000)), budget_events=2e7)
    >>> x = np.concatenate([rng.normal(40, 6, 2000), rng.normal(43, 6, 2000)])  # 0.5 sigma shift at 2000
    >>> [(c.index, c.active) for c in cusum.update_many(x, np.arange(4000.0))]
    [(2126, True)]
    >>> cusum.evidence().detector, round(cusum.shift, 1)
    ('cusum', 0.6)
    """

    name: str | None
    profile: NumericProfile
    kind: str = "data_drift"
    budget_events: float = 1e6
    chunk: int = 16
    clear_window: int = 500
    clear_after: int = 2
    # Per sum (upper sums, then lower), as lists: one value at a time costs no array conversions.
    csum: list[float] = field(default_factory=_zeros)  # increments since the sum's chunk began
    low: list[float] = field(default_factory=_zeros)  # ... their running minimum, floored at minus the sum then
    run_start: list[int] = field(default_factory=_first_run)  # index of the first value of the sum's run
    run_ts: list[float] = field(default_factory=_pending)  # ... its event time (NaN until that value comes)
    n: int = 0
    active: bool = False
    shift: float = 0.0  # estimated shift (reference std, signed) when the condition started
    fired: tuple[int, float, float, int] = (0, 0.0, 0.0, 0)  # CUSUM index (upper sums first), sum, threshold, run
    fired_at: int = 0  # values seen when the condition started
    fired_ts: float = 0.0  # event time of the first value of the run that fired
    clear_sum: float = 0.0
    clear_n: int = 0
    clean: int = 0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        self._derive()

    def _derive(self) -> None:
        """Rebuild what derives from the profile and budget (never checkpointed; the tables are shared)."""
        self.scores = NormalScores(self.profile)
        self.h, self.h2 = _bank(float(self.budget_events), min(max(int(self.profile.sample_size), 2), SKETCH_SAMPLES))
        self._h2 = self.h2.tolist()

    _after_restore = _derive  # the old checkpoint codec (streams/checkpoint.py) calls this after decoding

    def set_budget(self, budget_events: float) -> None:
        """Recalibrate the thresholds to a new budget; the sums carry on."""
        self.budget_events = budget_events
        self._derive()

    @property
    def sums(self) -> np.ndarray:
        """The upper sums (one per shift), then the lower sums."""
        sums: np.ndarray = np.array(self.csum) - np.array(self.low)
        return sums

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
        """Add one value with its event time (Unix seconds)."""
        if math.isfinite(x):
            self.step(float(x), float(ts))

    def step(self, x: float, ts: float) -> bool:
        """Add one finite value; return whether the condition changed. The state of ``update_many([x], [ts])``."""
        return self._step(self.scores.score(x, self.n), ts)

    def _step(self, z: float, ts: float) -> bool:
        """Add one value's normal score, in plain Python; return whether the condition changed."""
        if self.active:
            self.clear_sum += z  # as np.cumsum from the carried sum
            self.clear_n += 1
            self.n += 1
            changed = self.clear_n == self.clear_window and self._judge_clearing(ts)
        else:
            changed = self._grow(z, ts)
        self.last_ts = ts
        return changed

    def update_many(self, values: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Add values in stream order with their event times; return where the condition started or stopped."""
        x = np.asarray(values, dtype=np.float64)
        times = as_times(ts, len(x))
        kept = None
        if not np.isfinite(x).all():
            kept = np.flatnonzero(np.isfinite(x))
            x, times = x[kept], times[kept]
        if not len(x):
            return []
        changes: list[Change] = []
        if len(x) <= _SCORED_ONE_BY_ONE or len(x) <= _SUMMED_ONE_BY_ONE:  # value by value: the same arithmetic
            stamps = times.tolist()
            if len(x) <= _SCORED_ONE_BY_ONE:
                z = [self.scores.score(v, self.n + i) for i, v in enumerate(x.tolist())]
            else:
                z = self.scores.transform(x, self.n).tolist()
            for i in range(len(z)):
                if self._step(z[i], stamps[i]):
                    changes.append(Change(i, self.active, self.evidence()))
        else:
            scores = self.scores.transform(x, self.n)
            done = 0
            while done < len(scores):
                done = (self._clearing if self.active else self._accumulate)(scores, times, done, changes)
        self.last_ts = float(times[-1])
        if kept is not None:
            changes = [Change(int(kept[c.index]), c.active, c.evidence) for c in changes]
        return changes

    def _chunks(self, inc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Running increments and their floored running minimum for ``inc`` (sums x values), chunk by chunk."""
        size = self.chunk
        first = min(inc.shape[1], size - self.n % size)  # the values that complete the open chunk
        c0 = np.cumsum(np.concatenate((np.array(self.csum)[:, None], inc[:, :first]), axis=1), axis=1)[:, 1:]
        low0 = np.minimum(np.minimum.accumulate(c0, axis=1), np.array(self.low)[:, None])
        rest = inc.shape[1] - first
        if not rest:
            return c0, low0
        rows = -(-rest // size)
        grid = np.zeros((2 * _M, rows * size))
        grid[:, :rest] = inc[:, first:]
        c = np.cumsum(grid.reshape(2 * _M, rows, size), axis=2)  # each chunk from zero
        least = np.minimum.accumulate(c, axis=2)
        floors = np.empty((2 * _M, rows))
        floor = -(c0[:, -1] - low0[:, -1])  # minus each sum at the chunk's start
        for row in range(rows):
            floors[:, row] = floor
            floor = -(c[:, row, -1] - np.minimum(least[:, row, -1], floor))
        low = np.minimum(least, floors[:, :, None])
        return (
            np.concatenate((c0, c.reshape(2 * _M, -1)[:, :rest]), axis=1),
            np.concatenate((low0, low.reshape(2 * _M, -1)[:, :rest]), axis=1),
        )

    def _accumulate(self, z: np.ndarray, times: np.ndarray, done: int, changes: list[Change]) -> int:
        """Grow the sums over ``z[done:]`` up to the first crossing; return where it stopped."""
        starts = np.array(self.run_start, dtype=np.int64)
        stamps = np.where(starts == self.n, times[done], np.array(self.run_ts))  # runs that start here
        c, low = self._chunks(_SIGNS * z[done:] - _K2)
        s = c - low
        over = (s > self.h2[:, None]).any(axis=0)
        crossed = int(np.argmax(over)) if over.any() else -1
        end = crossed + 1 if crossed >= 0 else s.shape[1]  # values taken
        # A sum is zero right after its running minimum: the last zero starts the current run.
        zero = s[:, :end] <= 0.0
        last = end - 1 - np.argmax(zero[:, ::-1], axis=1)
        after = done + last + 1  # the run's first value: taken here, or still to come (its time then unknown)
        had = zero.any(axis=1)
        self.run_start = np.where(had, self.n + last + 1, starts).tolist()
        known = np.where(after < done + end, times[np.minimum(after, len(z) - 1)], np.nan)
        self.run_ts = np.where(had, known, stamps).tolist()
        self.n += end
        if self.n % self.chunk == 0:  # a chunk ends: the next one starts from zero, floored at minus the sums
            self.csum, self.low = _zeros(), (-s[:, end - 1]).tolist()
        else:
            self.csum, self.low = c[:, end - 1].tolist(), low[:, end - 1].tolist()
        if crossed >= 0:
            self._fire(int(np.argmax(s[:, crossed] > self.h2)), float(times[done + crossed]))
            changes.append(Change(done + crossed, True, self.evidence()))
        return done + end

    def _grow(self, z: float, at: float) -> bool:
        """:meth:`_accumulate` for one value, in plain Python with the same arithmetic; return whether it fired."""
        n = self.n
        csum, low, starts, stamps, h2, k2 = self.csum, self.low, self.run_start, self.run_ts, self._h2, _K2_LIST
        ends_chunk = (n + 1) % self.chunk == 0
        crossed = -1
        for r in range(2 * _M):
            if starts[r] == n:  # the run starts with this value
                stamps[r] = at
            c = csum[r] + ((z if r < _M else -z) - k2[r])
            least = low[r]
            if c < least:
                least = c
            s = c - least
            if s <= 0.0:  # the run restarts at the next value
                starts[r] = n + 1
                stamps[r] = math.nan
            elif crossed < 0 and s > h2[r]:
                crossed = r
            if ends_chunk:
                csum[r] = 0.0
                low[r] = -s
            else:
                csum[r] = c
                low[r] = least
        self.n = n + 1
        if crossed >= 0:
            self._fire(crossed, at)
        return crossed >= 0

    def _fire(self, row: int, at: float) -> None:
        total = self.csum[row] - self.low[row]
        run = self.n - self.run_start[row]
        sign = 1.0 if row < _M else -1.0
        self.shift = sign * (total / run + SHIFTS[row % _M] / 2)
        self.fired = (row, total, float(self.h[row % _M]), run)
        self.fired_at, self.fired_ts, self.last_ts = self.n, self.run_ts[row], at
        self.active = True
        self.clear_sum, self.clear_n, self.clean = 0.0, 0, 0

    def _clearing(self, z: np.ndarray, times: np.ndarray, done: int, changes: list[Change]) -> int:
        """Fill the clearing window from ``z[done:]``; judge it when full; return where it stopped."""
        take = min(len(z) - done, self.clear_window - self.clear_n)
        self.clear_sum = float(np.cumsum(np.concatenate(([self.clear_sum], z[done : done + take])))[-1])
        self.clear_n += take
        self.n += take
        end = done + take
        if self.clear_n == self.clear_window and self._judge_clearing(float(times[end - 1])):
            changes.append(Change(end - 1, False, self.evidence()))
        return end

    def _judge_clearing(self, at: float) -> bool:
        """Judge a full clearing window (its last value at event time ``at``); return whether the condition cleared."""
        clean = abs(self.clear_sum / self.clear_n) < self.clear_bound
        self.clean = self.clean + 1 if clean else 0
        self.clear_sum, self.clear_n = 0.0, 0
        if self.clean < self.clear_after:
            return False
        self.active, self.clean = False, 0  # the sums restart from zero at the next value
        self.csum, self.low = _zeros(), _zeros()
        self.run_start = [self.n] * (2 * _M)
        self.run_ts = _pending()
        self.last_ts = at
        return True

    def evidence(self) -> Evidence:
        """The decision that started the condition: the sum, its threshold, and the run it rests on."""
        index, total, bound, run = self.fired
        label = self.name if self.name is not None else "score"
        direction = "up" if self.shift >= 0 else "down"
        tuned = SHIFTS[index % _M]
        message = (
            f"{label}: level shifted {direction} {abs(self.shift):.2f} reference std over {run} values "
            f"(CUSUM tuned to {tuned:g} std: {total:.1f} > threshold {bound:.1f})"
        )
        severity = "critical" if abs(self.shift) >= 1.0 else "warning"
        return Evidence(
            self.kind,
            self.name,
            "cusum",
            round(total, 6),
            round(bound, 6),
            run,
            self.fired_ts,
            self.last_ts,
            severity,
            message,
        )
