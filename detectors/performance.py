"""Realized model performance from joined (prediction, label) pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from detectors.alerts import Evidence
from detectors.windows import RollingMean, RunningMoments, WindowClock

CLASSIFICATION = "classification"
REGRESSION = "regression"


def infer_task(prediction: Any) -> str:
    """Regression when predictions are floats, else classification.

    >>> infer_task(0.73), infer_task(1), infer_task("spam"), infer_task(True)
    ('regression', 'classification', 'classification', 'classification')
    """
    return REGRESSION if isinstance(prediction, float) else CLASSIFICATION


def same_class(prediction: Any, label: Any) -> bool:
    """Compare classes across JSON types: ``1``, ``1.0``, ``"1"``, ``true`` and ``"true"`` are one class.

    >>> same_class(1, "1"), same_class(True, 1), same_class("false", 0), same_class("a", "b")
    (True, True, True, False)
    """
    return _canonical(prediction) == _canonical(label)


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return "1" if value.lower() == "true" else "0"
    return str(value)


@dataclass
class PerformanceMonitor:
    """Rolling and cumulative accuracy (classification) or MAE (regression).

    The first ``baseline_size`` joined pairs set the baseline. The condition
    holds when the rolling metric is worse than the baseline by ``min_drop``
    (accuracy points; for MAE, a relative increase of ``5 * min_drop``) with a
    z-score of at least ``min_z``; it clears below half that degradation.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> monitor = PerformanceMonitor(CLASSIFICATION)
    >>> for i in range(6000):
    ...     right = rng.random() < (0.9 if i < 3000 else 0.7)
    ...     monitor.update(1 if right else 0, 1, float(i))
    ...     if monitor.active:
    ...         break
    >>> i, monitor.metric_name, round(monitor.rolling, 2)
    (3503, 'accuracy', 0.8)
    """

    task: str
    baseline_size: int = 500
    window: int = 1000
    min_drop: float = 0.10
    min_z: float = 4.0
    check_every: int = 16
    n: int = 0
    total_loss: float = 0.0
    baseline_loss: RunningMoments = field(default_factory=RunningMoments)
    recent: RollingMean = field(init=False)
    active: bool = False
    degradation: float = 0.0
    last_ts: float = 0.0
    clock: WindowClock = field(init=False)

    def __post_init__(self) -> None:
        self.recent = RollingMean(self.window)
        self.clock = WindowClock(self.window)

    @property
    def metric_name(self) -> str:
        return "accuracy" if self.task == CLASSIFICATION else "mae"

    def _value(self, mean_loss: float) -> float:
        return 1.0 - mean_loss if self.task == CLASSIFICATION else mean_loss

    @property
    def rolling(self) -> float:
        """The metric over the last ``window`` pairs."""
        return self._value(self.recent.mean)

    @property
    def cumulative(self) -> float:
        """The metric since the start."""
        return self._value(self.total_loss / self.n) if self.n else float("nan")

    @property
    def baseline(self) -> float:
        return self._value(self.baseline_loss.mean)

    def loss(self, prediction: Any, label: Any) -> float:
        """0/1 error for classification, absolute error for regression."""
        if self.task == CLASSIFICATION:
            return 0.0 if same_class(prediction, label) else 1.0
        loss = abs(float(prediction) - float(label))
        if not math.isfinite(loss):
            raise ValueError(f"non-finite regression error for label {label!r}")
        return loss

    def update(self, prediction: Any, label: Any, ts: float) -> None:
        """Score one joined pair."""
        loss = self.loss(prediction, label)
        self.clock.tick(ts)
        self.n += 1
        self.total_loss += loss
        self.last_ts = ts
        self.recent.update(loss)
        if self.baseline_loss.n < self.baseline_size:
            self.baseline_loss.update(loss)
        elif self.n % self.check_every == 0:
            self._check()

    def _check(self) -> None:
        if self.recent.n < min(self.window, 200):
            return
        base = self.baseline_loss.mean
        worse = self.recent.mean - base
        if self.task == CLASSIFICATION:
            self.degradation, bound = worse, self.min_drop
            p = min(max(base, 0.01), 0.5)
            spread = math.sqrt(p * (1 - p))
        else:
            self.degradation, bound = worse / max(base, 1e-12), 5 * self.min_drop
            spread = max(self.baseline_loss.std, 1e-12) / max(base, 1e-12)
        z = self.degradation / (spread / math.sqrt(self.recent.n))
        if self.active:
            self.active = self.degradation >= bound / 2
        else:
            self.active = self.degradation >= bound and z >= self.min_z

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        bound = self.min_drop if self.task == CLASSIFICATION else 5 * self.min_drop
        severity = "critical" if self.degradation >= 2 * bound else "warning"
        threshold = self.baseline - bound if self.task == CLASSIFICATION else self.baseline * (1 + bound)
        message = (
            f"rolling {self.metric_name} {self.rolling:.4g} over the last {self.recent.n} labelled "
            f"predictions (baseline {self.baseline:.4g})"
        )
        return Evidence(
            "performance", None, f"rolling_{self.metric_name}", round(self.rolling, 6), round(threshold, 6),
            self.recent.n, self.clock.start, self.last_ts, severity, message,
        )
