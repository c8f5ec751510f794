"""Sequential drift detection on one numeric stream, against its own baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectors.adwin import ReplayableADWIN
from detectors.alerts import Evidence
from detectors.windows import RunningMoments


@dataclass
class FeatureDriftMonitor:
    """ADWIN on a numeric feature (or the score), gated by effect size.

    The first ``baseline_size`` values form the baseline (mean and standard
    deviation). After that every value feeds river's ADWIN, which drops the
    part of its window that no longer matches the recent data. The condition
    holds while the mean of ADWIN's window sits at least ``min_effect``
    baseline standard deviations away from the baseline mean, with a z-score
    of at least ``min_z`` (counting the error of both means); it clears once the
    effect has stayed below half that for ``baseline_size`` values (hysteresis).

    Parameters
    ----------
    name
        The feature name, or ``None`` for the score.
    kind
        ``data_drift`` for a feature, ``prediction_drift`` for the score.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> monitor = FeatureDriftMonitor("age")
    >>> for i in range(3000):
    ...     x = rng.gauss(40 if i < 2000 else 46, 6)  # a 1 sigma shift at event 2000
    ...     monitor.update(x, float(i))
    ...     if monitor.active:
    ...         break
    >>> i, monitor.evidence().severity
    (2065, 'critical')
    """

    name: str | None
    kind: str = "data_drift"
    baseline_size: int = 500
    min_effect: float = 0.25
    min_z: float = 5.0
    delta: float = 0.002
    check_every: int = 16
    baseline: RunningMoments = field(default_factory=RunningMoments)
    adwin: ReplayableADWIN | None = None
    active: bool = False
    effect: float = 0.0
    n: int = 0
    cleared_since: int | None = None  # value count when the effect last fell below the clear bound
    window_ts: list[float] = field(default_factory=list)  # event time sampled every check_every values
    last_ts: float = 0.0

    def update(self, x: float, ts: float) -> None:
        """Add one value with its event time (Unix seconds)."""
        self.n += 1
        self.last_ts = ts
        if self.baseline.n < self.baseline_size:
            self.baseline.update(x)
            return
        if self.adwin is None:
            self.adwin = ReplayableADWIN(delta=self.delta)
        self.adwin.update(x)
        if self.n % self.check_every == 0:
            self.window_ts.append(ts)
            if len(self.window_ts) > 4096:
                del self.window_ts[:2048]
        if self.n % self.check_every == 0 or self.adwin.drift_detected or self.adwin.width < 256:
            self._check()

    def _check(self) -> None:
        assert self.adwin is not None
        scale = max(self.baseline.std, 1e-9 * abs(self.baseline.mean), 1e-12)
        effect = abs(self.adwin.estimation - self.baseline.mean) / scale
        self.effect = effect if math.isfinite(effect) else 0.0  # an overflowing sum measures nothing
        # Both means are estimates: the baseline's error counts as much as the window's.
        width = max(self.adwin.width, 1.0)
        z = self.effect / math.sqrt(1.0 / width + 1.0 / self.baseline.n)
        if self.active:
            # Clear only on lasting evidence: below half the effect, on a window of 30 values or
            # more, for as many values as the baseline holds. Events of one model arrive out of
            # order across input partitions, so a burst of older values must not end an episode.
            below = width >= 30 and self.effect < self.min_effect / 2
            if not below:
                self.cleared_since = None
            elif self.cleared_since is None:
                self.cleared_since = self.n
            self.active = self.cleared_since is None or self.n - self.cleared_since < self.baseline_size
        else:
            self.active = width >= 30 and self.effect >= self.min_effect and z >= self.min_z
            self.cleared_since = None

    def window_start(self) -> float:
        """Event time of the oldest value in ADWIN's window (to ``check_every`` values)."""
        width = int(self.adwin.width) if self.adwin is not None else 0
        back = width // self.check_every + 1
        if not self.window_ts:
            return self.last_ts
        return self.window_ts[max(len(self.window_ts) - back, 0)]

    def evidence(self) -> Evidence:
        """The current measurement, whether or not the condition holds."""
        width = int(self.adwin.width) if self.adwin is not None else 0
        mean = self.adwin.estimation if self.adwin is not None else self.baseline.mean
        label = self.name if self.name is not None else "score"
        severity = "critical" if self.effect >= 4 * self.min_effect else "warning"
        message = (
            f"{label}: mean {mean:.4g} vs baseline {self.baseline.mean:.4g} "
            f"({self.effect:.2f} baseline std over the last {width} values)"
        )
        return Evidence(
            self.kind, self.name, "adwin", round(self.effect, 6), self.min_effect,
            width, self.window_start(), self.last_ts, severity, message,
        )
