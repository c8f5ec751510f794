"""Concept drift: a change in the model's error stream once labels join."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river.drift.binary import DDM, EDDM, HDDMA

from detectors.adwin import ReplayableADWIN
from detectors.alerts import Evidence
from detectors.base import Change, Hysteresis, RingSum, as_times
from detectors.windows import RunningMoments, WindowClock, all_finite

__all__ = ["BINARY_METHODS", "METHODS", "ConceptDriftMonitor"]

# HDDM_W is left out: its state holds river's Rust EWMean, which a checkpoint cannot restore exactly.
BINARY_METHODS: dict[str, Callable[[], Any]] = {"ddm": DDM, "eddm": EDDM, "hddm_a": HDDMA}
METHODS = (*BINARY_METHODS, "adwin")


@dataclass
class ConceptDriftMonitor:
    """A river detector on the error stream: DDM on 0/1 errors (classification), ADWIN on absolute errors.

    ``method`` chooses another: ``eddm`` or ``hddm_a`` for 0/1
    errors, or ``adwin`` for either; a regression model always uses ADWIN.

    A detection alone does not raise the condition: the mean loss since the
    detection (over at most the last ``window`` losses) must also be worse
    than the baseline loss (the first ``baseline_size`` losses) by
    ``min_worsening`` (absolute error rate, or relative MAE for regression)
    with a z-score of at least ``min_z``, once ``min_n`` losses followed it. It
    clears when the loss since the detection falls below half that worsening
    (:class:`~detectors.base.Hysteresis`). River's detectors take one value at
    a time; :meth:`update_many` feeds them in a loop and judges the losses
    since the detection at once.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(5)
    >>> losses = [float(rng.random() < (0.1 if i < 3000 else 0.3)) for i in range(6000)]
    >>> monitor = ConceptDriftMonitor(binary=True)
    >>> [(c.index, c.active) for c in monitor.update_many(np.array(losses), np.arange(6000.0))][:1]
    [(3256, True)]
    >>> monitor.detector_name
    'ddm'
    """

    binary: bool
    baseline_size: int = 500
    min_worsening: float = 0.05
    min_z: float = 4.0
    min_n: int = 100
    window: int = 1000
    method: str | None = None  # None: ddm for classification, adwin for regression
    baseline: RunningMoments = field(default_factory=RunningMoments)
    # the river detector that runs (exactly one is set)
    ddm: DDM | None = None
    eddm: EDDM | None = None
    hddm_a: HDDMA | None = None
    adwin: ReplayableADWIN | None = None
    since: RingSum = field(default_factory=lambda: RingSum(1))  # losses since the detection (a new ring at each)
    clock: WindowClock = field(default_factory=lambda: WindowClock(1))
    detected: bool = False
    rule: Hysteresis = field(default_factory=lambda: Hysteresis(0.05))
    worsening: float = 0.0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in (None, *METHODS):
            raise ValueError(f"concept drift detector {self.method!r}: choose one of {', '.join(METHODS)}")
        if all(d is None for d in (self.ddm, self.eddm, self.hddm_a, self.adwin)):  # a new monitor
            name = self.detector_name
            if name == "adwin":
                self.adwin = ReplayableADWIN()
            else:
                setattr(self, name, BINARY_METHODS[name]())
            self.rule = Hysteresis(self.min_worsening, self.min_z)

    @property
    def detector_name(self) -> str:
        if not self.binary or self.method == "adwin":
            return "adwin"
        return self.method or "ddm"

    @property
    def detector(self) -> Any:
        """The river detector (ADWIN in its replayable wrapper)."""
        return next(d for d in (self.ddm, self.eddm, self.hddm_a, self.adwin) if d is not None)

    @property
    def active(self) -> bool:
        return self.rule.active

    def update(self, loss: float, ts: float) -> None:
        """Add the loss of one joined prediction (0/1 error, or absolute error)."""
        self.update_many(np.array([loss], dtype=np.float64), np.array([ts], dtype=np.float64))

    def update_many(self, losses: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Add losses in order; return where the condition started or stopped holding."""
        losses = np.asarray(losses, dtype=np.float64)
        times = as_times(ts, len(losses))
        if not len(losses):
            return []
        if not all_finite(losses):
            raise ValueError("non-finite loss")
        self.rule.bound, self.rule.min_z = self.min_worsening, self.min_z
        start = 0
        if self.baseline.n < self.baseline_size:
            start = min(len(losses), self.baseline_size - self.baseline.n)
            self.baseline.update_many(losses[:start])
        x, t = losses[start:], times[start:]
        hits = self._detections(x)  # river's detections, as positions in ``x``
        changes: list[Change] = []
        pos = 0
        while pos < len(x) and (self.detected or hits):
            later = bisect.bisect_right(hits, pos)  # the first detection after this value
            if later and hits[later - 1] == pos and not self.active:
                self._restart()  # measure from here; an open episode keeps its evidence
            elif not self.detected:  # only river's detector runs until it detects
                if later == len(hits):
                    break
                pos = hits[later]
                continue
            end = hits[later] if later < len(hits) else len(x)
            pos = self._follow(x, t, pos, end, start, changes)
        self.last_ts = float(times[-1])
        return changes

    def _detections(self, x: np.ndarray) -> list[int]:
        """Feed river's detector value by value; the positions at which it detected a change."""
        if self.adwin is not None:
            return np.flatnonzero(self.adwin.update_many(x)).tolist()
        detector = self.detector
        update = detector.update
        found = []
        for i, loss in enumerate(x.tolist()):
            update(loss)
            if detector.drift_detected:
                found.append(i)
        return found

    def _restart(self) -> None:
        self.detected = True
        self.since = RingSum(self.window)
        self.clock = WindowClock(self.window)

    def _follow(self, x: np.ndarray, t: np.ndarray, a: int, b: int, offset: int, changes: list[Change]) -> int:
        """Measure ``x[a:b]`` since the detection, up to its first change or the detection's end.

        Returns the position after the last value taken.
        """
        if b - a == 1:
            return self._follow_one(x, t, a, offset, changes)
        chunk = x[a:b]
        ring = self.since
        trial = RingSum(ring.size, ring.values.copy(), ring.head, ring.count, ring.total)
        count = ring.count
        totals = trial.push_many(chunk)
        since_n = np.minimum(count + 1 + np.arange(len(chunk)), self.window)
        worsening, z = self._decisions(totals / since_n, since_n)
        held = math.inf if self.active else -math.inf  # too few losses since the detection: no decision
        flip = self.rule.first_change(np.where(since_n >= self.min_n, worsening, held), z)
        # a detection not followed by a real change ends once a whole window stayed near the baseline
        idle = (since_n >= self.window) & (worsening < self.min_worsening / 2)
        end = np.flatnonzero(idle)
        gone = int(end[0]) if len(end) and not self.active else -1
        stop = min([i for i in (flip, gone) if i >= 0], default=len(chunk))
        if stop == len(chunk):
            self.since = trial
            self.clock.tick_many(t[a:b])
            self.worsening = float(worsening[-1])
            return b
        self.since.extend(chunk[: stop + 1])
        self.clock.tick_many(t[a : a + stop + 1])
        self.worsening = float(worsening[stop])
        if stop == flip:
            self.rule.active = not self.rule.active
            self.detected = self.active or not idle[stop]
            self.last_ts = float(t[a + stop])
            changes.append(Change(offset + a + stop, self.active, self.evidence()))
        else:
            self.detected = False
        return a + stop + 1

    def _follow_one(self, x: np.ndarray, t: np.ndarray, a: int, offset: int, changes: list[Change]) -> int:
        """:meth:`_follow` for one value (live traffic), with the same arithmetic on scalars."""
        total = float(self.since.push_many(x[a : a + 1])[0])
        since_n = min(self.since.count, self.window)
        worsening, z = (float(v) for v in self._decisions(total / since_n, since_n))
        held = math.inf if self.active else -math.inf
        flips = self.rule.holds(worsening if since_n >= self.min_n else held, z) != self.active
        idle = since_n >= self.window and worsening < self.min_worsening / 2
        self.clock.tick_many(t[a : a + 1])
        self.worsening = worsening
        if flips:
            self.rule.active = not self.rule.active
            self.detected = self.active or not idle
            self.last_ts = float(t[a])
            changes.append(Change(offset + a, self.active, self.evidence()))
        elif idle and not self.active:
            self.detected = False
        return a + 1

    def _decisions(self, mean_loss: Any, since_n: Any) -> tuple[Any, Any]:
        """Worsening since the detection and its z-score against the baseline (columns, or one value)."""
        base = self.baseline.mean
        if self.binary:
            worsening = mean_loss - base
            p = min(max(base, 0.01), 0.5)
            spread = math.sqrt(p * (1 - p))
        else:
            worsening = (mean_loss - base) / max(base, 1e-12)
            spread = max(self.baseline.std, 1e-12) / max(base, 1e-12)
        return worsening, worsening / (spread * np.sqrt(1.0 / since_n + 1.0 / self.baseline.n))

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        severity = "critical" if self.worsening >= 4 * self.min_worsening else "warning"
        what = "error rate" if self.binary else "mean absolute error"
        message = (
            f"{what} {self.since.mean:.4g} over {self.since.n} labelled predictions since the "
            f"{self.detector_name} detection (baseline {self.baseline.mean:.4g})"
        )
        return Evidence(
            "concept_drift",
            None,
            self.detector_name,
            round(self.worsening, 6),
            self.min_worsening,
            self.since.n,
            self.clock.start,
            self.last_ts,
            severity,
            message,
        )
