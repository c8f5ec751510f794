"""Every detector of one feature: data quality (missing, type, range, arrival) and drift."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.alerts import AlertKey, Evidence
from detectors.missing_rate import MissingRateMonitor
from detectors.reference import NumericProfile
from detectors.windowed_tests import WindowedDriftMonitor

FeatureValue = float | int | str | bool | None


@dataclass
class NewFeature:
    """A feature that was not in the model's schema when it first appeared.

    The schema is the uploaded reference's features, or else the features
    seen in the model's first ``schema_events`` events. A rare optional
    feature can miss those by chance, so the condition starts only once the
    feature has ``min_seen`` values at a rate the schema could not have missed
    (``min_seen / schema_events`` or more of the events since it appeared: the
    chance of missing such a feature is about exp(-min_seen)). It holds until
    the feature has ``settle`` values, by which time it is monitored like any
    other (and its own reference is building).

    >>> notice = NewFeature("coupon", first_event=812, first_ts=812.0, schema_events=500, settle=20)
    >>> for i in range(15):
    ...     notice.update(True, 813.0 + i)
    >>> notice.active, notice.evidence().detector
    (True, 'new_feature')
    >>> for i in range(10):
    ...     notice.update(True, 828.0 + i)
    >>> notice.active
    False
    """

    name: str
    first_event: int
    first_ts: float
    schema_events: int = 500
    settle: int = 500
    min_seen: int = 10
    seen: int = 0
    since: int = 0  # the model's events since the feature appeared
    noticed: bool = False
    last_ts: float = 0.0

    @property
    def active(self) -> bool:
        return self.noticed and self.seen < self.settle

    @property
    def settled(self) -> bool:
        return self.seen >= self.settle

    def update(self, present: bool, ts: float) -> None:
        """Count one event of the model, in which the feature was present or not."""
        self.since += 1
        if present:
            self.seen += 1
            self.last_ts = ts
        if not self.noticed and self.seen >= self.min_seen:
            self.noticed = self.seen * self.schema_events >= self.min_seen * self.since

    def evidence(self) -> Evidence:
        message = (
            f"{self.name}: a new feature, first seen in prediction {self.first_event + 1} of this model, "
            f"present in {self.seen} of the {self.since} predictions since"
        )
        return Evidence(
            "data_quality", self.name, "new_feature", float(self.seen), float(self.min_seen), self.seen,
            self.first_ts, max(self.last_ts, self.first_ts), "warning", message,
        )


@dataclass
class RangeMonitor:
    """The share of a feature's values far outside its reference range, judged per window of values.

    "Far outside" is beyond the reference's [min, max] by more than its
    interquartile range, ``[low, high]``: broken units, sentinels such as -999,
    garbage; a wider spread is data drift, not this. A fresh sample from the
    reference falls outside the range of ``n`` reference values with
    probability 2 / (n + 1), the rate assumed here. The condition starts when a
    window's share exceeds that by ``min_jump`` with a binomial z-score of at
    least ``min_z``, and clears on a window below half the jump.

    >>> monitor = RangeMonitor("price", low=0.0, high=100.0, expected=0.001)
    >>> monitor.judge(outside=3, n=500, start=0.0, end=9.0); monitor.active
    False
    >>> monitor.judge(outside=140, n=500, start=10.0, end=19.0); monitor.active, monitor.evidence().detector
    (True, 'out_of_range')
    """

    name: str
    low: float
    high: float
    expected: float
    min_jump: float = 0.10
    min_z: float = 4.0
    rate: float = 0.0
    n: int = 0
    window: tuple[float, float] = (0.0, 0.0)
    active: bool = False

    def judge(self, outside: int, n: int, start: float, end: float) -> None:
        """Take one window: ``outside`` of its ``n`` values fell outside the range."""
        self.rate, self.n, self.window = outside / max(n, 1), n, (start, end)
        jump = self.rate - self.expected
        p = min(max(self.expected, 1.0 / max(n, 1)), 0.5)
        z = jump / math.sqrt(p * (1 - p) / max(n, 1))
        self.active = jump >= self.min_jump / 2 if self.active else (jump >= self.min_jump and z >= self.min_z)

    def evidence(self) -> Evidence:
        severity = "critical" if self.rate - self.expected >= 3 * self.min_jump else "warning"
        message = (
            f"{self.name}: {self.rate:.1%} of the last {self.n} values far outside the reference range "
            f"(below {self.low:.4g} or above {self.high:.4g}; expected {self.expected:.2%})"
        )
        return Evidence(
            "data_quality", self.name, "out_of_range", round(self.rate, 6), round(self.expected + self.min_jump, 6),
            self.n, self.window[0], self.window[1], severity, message,
        )


@dataclass
class FeatureMonitor:
    """Missing rate, type changes, range and drift of one feature.

    Drift runs against the feature's reference (windowed tests and, for
    numbers, a CUSUM: :class:`WindowedDriftMonitor`). Once a numeric reference
    exists, each window's share of values far outside its range is a
    data-quality rate (:class:`RangeMonitor`).

    >>> from detectors.missing_rate import MissingRateMonitor
    >>> m = FeatureMonitor("age", True, MissingRateMonitor("age"))
    >>> for i in range(3):
    ...     m.observe(None if i == 1 else 40 + i, float(i))
    >>> m.missing.missing, m.summary()["n"]
    (1, 3)
    """

    name: str
    numeric: bool
    missing: MissingRateMonitor
    windowed: WindowedDriftMonitor | None = None
    type_mismatches: int = 0
    type_changes: MissingRateMonitor | None = None  # the share of values of the other type
    out_of_range: RangeMonitor | None = None  # the share of numbers outside the reference range
    new: NewFeature | None = None

    @property
    def active(self) -> bool:
        return bool(self.windowed and self.windowed.active)

    def evidence(self) -> Evidence:
        assert self.windowed is not None
        return self.windowed.evidence()

    def observe(self, value: FeatureValue, ts: float) -> None:
        """Feed this feature's value in one event (``None``: null or absent)."""
        self.missing.update(value is None, ts)
        if self.new is not None and not self.new.settled:
            self.new.update(value is not None, ts)
        if value is None:
            return
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.type_changes is not None:
            self.type_changes.update(numeric != self.numeric, ts)
        if numeric != self.numeric:
            self.type_mismatches += 1
            return
        windowed = self.windowed
        if windowed is None:
            return
        judged = windowed.windows
        windowed.update(value, ts)
        if windowed.windows != judged and isinstance(windowed.profile, NumericProfile):
            self._judge_range(windowed)

    def _judge_range(self, windowed: WindowedDriftMonitor) -> None:
        profile = windowed.profile
        assert isinstance(profile, NumericProfile)
        monitor = self.out_of_range
        if monitor is None:
            q = profile.quantiles
            iqr = float(q[3 * (len(q) - 1) // 4] - q[(len(q) - 1) // 4])  # the sketch is an array now
            expected = 2.0 / (profile.sample_size + 1)
            monitor = RangeMonitor(self.name, profile.min - iqr, profile.max + iqr, expected, self.missing.min_jump)
            self.out_of_range = monitor
        outside = int(np.count_nonzero((windowed.buffer < monitor.low) | (windowed.buffer > monitor.high)))
        self.out_of_range.judge(outside, len(windowed.buffer), *windowed.judged)

    def detectors(self) -> list[tuple[AlertKey, Any]]:
        """This feature's detectors, keyed as its alerts are."""
        name = self.name
        found: list[tuple[AlertKey, Any]] = [(("data_quality", name, "missing_rate"), self.missing)]
        named = (("type_change", self.type_changes), ("out_of_range", self.out_of_range), ("new_feature", self.new))
        found += [(("data_quality", name, key), detector) for key, detector in named if detector is not None]
        if self.windowed is not None:
            found.append((("data_drift", name, "drift"), self))
        return found

    @property
    def drift_score(self) -> float:
        """How close this feature is to a drift alert: 1 or more means significant (0 without a reference)."""
        windowed = self.windowed
        if windowed is None or windowed.profile is None:
            return 0.0
        cusum = windowed.cusum.progress if windowed.cusum is not None else 0.0
        return max(windowed.score, cusum)

    def summary(self) -> dict[str, Any]:
        windowed = self.windowed
        profile = windowed.profile if windowed is not None else None
        cusum = windowed.cusum if windowed is not None else None
        numeric_profile = profile if isinstance(profile, NumericProfile) else None
        return {
            "type": "numeric" if self.numeric else "categorical",
            "n": self.missing.n,
            "missing": self.missing.missing,
            "missing_rate": round(self.missing.rate, 6),
            "type_mismatches": self.type_mismatches,
            "out_of_range_rate": round(self.out_of_range.rate, 6) if self.out_of_range is not None else None,
            "drift_statistic": round(self.drift_score, 6),
            "cusum_progress": round(cusum.progress, 6) if cusum is not None else None,
            "reference": None if windowed is None else ("ready" if profile is not None else "building"),
            "reference_mean": round(numeric_profile.mean, 6) if numeric_profile is not None else None,
            "reference_std": round(numeric_profile.std, 6) if numeric_profile is not None else None,
            **({f"window_{k}": round(v, 6) for k, v in windowed.stats.items()} if windowed else {}),
        }
