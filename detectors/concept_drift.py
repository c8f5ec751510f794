"""Concept drift: a change in the model's error stream once labels join."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from river.drift.binary import DDM, EDDM, HDDMA

from detectors.adwin import ReplayableADWIN
from detectors.alerts import Evidence
from detectors.windows import RollingMean, RunningMoments, WindowClock


# HDDM_W is left out: its state holds river's Rust EWMean, which a checkpoint cannot restore exactly.
BINARY_METHODS: dict[str, Callable[[], Any]] = {"ddm": DDM, "eddm": EDDM, "hddm_a": HDDMA}
METHODS = (*BINARY_METHODS, "adwin")


@dataclass
class ConceptDriftMonitor:
    """A river detector on the error stream: DDM on 0/1 errors (classification), ADWIN on absolute errors.

    ``method`` chooses another: ``eddm`` or ``hddm_a`` for 0/1
    errors, or ``adwin`` for either; a regression model always uses ADWIN.

    A detection alone does not raise the condition: the mean loss since the
    detection must also be worse than the baseline loss (the first
    ``baseline_size`` losses) by ``min_worsening`` (absolute error rate, or
    relative MAE for regression) with a z-score of at least ``min_z``. It
    clears when the loss since the detection falls below half that worsening.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(5)
    >>> monitor = ConceptDriftMonitor(binary=True)
    >>> for i in range(6000):
    ...     monitor.update(float(rng.random() < (0.1 if i < 3000 else 0.3)), float(i))
    ...     if monitor.active:
    ...         break
    >>> i, monitor.detector_name
    (3256, 'ddm')
    """

    binary: bool
    baseline_size: int = 500
    min_worsening: float = 0.05
    min_z: float = 4.0
    min_n: int = 100
    window: int = 1000
    method: str | None = None  # None: ddm for classification, adwin for regression
    baseline: RunningMoments = field(default_factory=RunningMoments)
    detector: Any = field(init=False)
    since: RollingMean = field(init=False)
    clock: WindowClock = field(init=False)
    detected: bool = False
    active: bool = False
    worsening: float = 0.0
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in (None, *METHODS):
            raise ValueError(f"concept drift detector {self.method!r}: choose one of {', '.join(METHODS)}")
        name = self.detector_name
        self.detector = BINARY_METHODS[name]() if name in BINARY_METHODS else ReplayableADWIN()
        self.since = RollingMean(self.window)
        self.clock = WindowClock(self.window)

    @property
    def detector_name(self) -> str:
        if not self.binary or self.method == "adwin":
            return "adwin"
        return self.method or "ddm"

    def update(self, loss: float, ts: float) -> None:
        """Add the loss of one joined prediction (0/1 error, or absolute error)."""
        self.last_ts = ts
        if self.baseline.n < self.baseline_size:
            self.baseline.update(loss)
            return
        self.detector.update(loss)
        if self.detector.drift_detected and not self.active:
            self.detected = True  # measure from here; an open episode keeps its evidence
            self.since = RollingMean(self.window)
            self.clock = WindowClock(self.window)
        if self.detected:
            self.since.update(loss)
            self.clock.tick(ts)
            self._check()

    def _check(self) -> None:
        base = self.baseline.mean
        if self.binary:
            self.worsening = self.since.mean - base
            p = min(max(base, 0.01), 0.5)
            spread = math.sqrt(p * (1 - p))
        else:
            self.worsening = (self.since.mean - base) / max(base, 1e-12)
            spread = max(self.baseline.std, 1e-12) / max(base, 1e-12)
        z = self.worsening / (spread * math.sqrt(1.0 / self.since.n + 1.0 / self.baseline.n))
        if self.active:
            self.active = self.since.n < self.min_n or self.worsening >= self.min_worsening / 2
        else:
            self.active = self.since.n >= self.min_n and self.worsening >= self.min_worsening and z >= self.min_z
        if not self.active and self.since.n >= self.window and self.worsening < self.min_worsening / 2:
            self.detected = False  # the detection was not followed by a real change

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        severity = "critical" if self.worsening >= 4 * self.min_worsening else "warning"
        what = "error rate" if self.binary else "mean absolute error"
        message = (
            f"{what} {self.since.mean:.4g} over {self.since.n} labelled predictions since the "
            f"{self.detector_name} detection (baseline {self.baseline.mean:.4g})"
        )
        return Evidence(
            "concept_drift", None, self.detector_name, round(self.worsening, 6), self.min_worsening,
            self.since.n, self.clock.start, self.last_ts, severity, message,
        )
