"""Every detector of one feature: data quality (missing, type, range, arrival) and drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.alerts import AlertKey
from detectors.base import Change
from detectors.columns import FeatureValue, is_number, numeric_column
from detectors.missing_rate import MissingRateMonitor, TypeChangeMonitor
from detectors.new_feature import NewFeature
from detectors.out_of_range import RangeMonitor
from detectors.reference import NumericProfile
from detectors.windowed_tests import WindowedDriftMonitor

__all__ = ["FeatureMonitor", "KeyedChange", "NewFeature", "RangeMonitor", "shift_changes"]

KeyedChange = tuple[AlertKey, Change]


def shift_changes(changes: list[Change], rows: np.ndarray | None, offset: int = 0) -> list[Change]:
    """Changes of a detector fed ``rows`` of a batch (from ``offset``), with indices into the batch."""
    if rows is None:
        return [Change(c.index + offset, c.active, c.evidence) for c in changes] if offset else changes
    return [Change(int(rows[c.index + offset]), c.active, c.evidence) for c in changes]


def _numeric_kinds(values: list[FeatureValue]) -> np.ndarray:
    """Which present values are numbers (bools are not)."""
    if set(map(type, values)) <= {float, int}:
        return np.ones(len(values), dtype=bool)
    return np.fromiter(map(is_number, values), dtype=bool, count=len(values))


@dataclass
class FeatureMonitor:
    """Missing rate, type changes, range and drift of one feature.

    Drift runs against the feature's reference (windowed tests and, for
    numbers, a CUSUM: :class:`WindowedDriftMonitor`). Once a numeric reference
    exists, each window's share of values far outside its range is a
    data-quality rate (:class:`RangeMonitor`). :meth:`update_many` takes the
    feature's column of a batch (None where an event lacks it) and returns the
    changes of all its detectors, keyed as their alerts are.

    >>> m = FeatureMonitor("age", True, MissingRateMonitor("age"))
    >>> m.update_many([40, None, 42], np.array([0.0, 1.0, 2.0]))
    []
    >>> m.missing.missing, m.summary()["n"]
    (1, 3)
    """

    name: str
    numeric: bool
    missing: MissingRateMonitor
    windowed: WindowedDriftMonitor | None = None
    type_mismatches: int = 0
    type_changes: TypeChangeMonitor | None = None  # the share of values of the other type
    out_of_range: RangeMonitor | None = None  # the share of numbers outside the reference range
    new: NewFeature | None = None
    window: int = 500  # values per range window: the windowed tests' window

    @property
    def active(self) -> bool:
        return bool(self.windowed and self.windowed.active)

    def evidence(self) -> Any:
        assert self.windowed is not None
        return self.windowed.evidence()

    def update_many(self, values: Sequence[FeatureValue], ts: np.ndarray) -> list[KeyedChange]:
        """Feed this feature's values in a batch of events (None: null or absent)."""
        values = list(values)
        if self._settling(values, ts):
            return []
        complete = None not in values  # the common case: a scan at C speed
        missing = np.zeros(len(values), dtype=bool) if complete else np.array([v is None for v in values], dtype=bool)
        out = self._keyed("missing_rate", self.missing.update_many(missing, ts))
        if self.new is not None and not self.new.settled:
            out += self._keyed("new_feature", self.new.update_many(~missing, ts))
        rows = np.arange(len(values)) if complete else np.flatnonzero(~missing)
        if not len(rows):
            return out
        present = values if complete else [values[i] for i in rows.tolist()]
        other = _numeric_kinds(present) != self.numeric
        if self.type_changes is not None:
            out += self._keyed("type_change", shift_changes(self.type_changes.update_many(other, ts[rows]), rows))
        mismatched = int(np.count_nonzero(other))
        self.type_mismatches += mismatched
        if self.windowed is None:
            return out
        keep = rows[~other] if mismatched else rows
        if not len(keep):
            return out
        kept = values if len(keep) == len(values) else [values[i] for i in keep.tolist()]
        column: Any = numeric_column(kept) if self.numeric else kept
        return out + self._drift(column, ts[keep], keep)

    def _settling(self, values: list[FeatureValue], ts: np.ndarray) -> bool:
        """Feed a batch none of whose detectors can change, in a few steps; False if that can't be known cheaply.

        That is a new feature's common case: every value present and of its type,
        while its rates take their baseline and its reference builds (and does not
        complete in this batch). The state left is exactly the general path's.
        """
        n, missing, types, windowed = len(values), self.missing, self.type_changes, self.windowed
        if (
            not n
            or types is None
            or self.out_of_range is not None
            or (self.new is not None and not self.new.settled)
            or not (missing.baseline_pending(n) and types.baseline_pending(n))
        ):
            return False
        kinds = set(map(type, values))
        if not (kinds <= {float, int} if self.numeric else kinds == {str}):
            return False
        column: Any = None
        if windowed is not None:
            builder = windowed.builder
            if builder is None or builder.kind not in (None, "numeric" if self.numeric else "categorical"):
                return False
            if builder.seen + n >= builder.size:
                return False
            column = numeric_column(values) if self.numeric else values
        last = float(ts[-1])
        missing.count_baseline(n, last)  # every value present, and of its type
        types.count_baseline(n, last)
        if windowed is not None:
            windowed.build(column, last)
        return True

    def observe(self, value: FeatureValue, ts: float) -> list[KeyedChange]:
        """Feed one event's value."""
        return self.update_many([value], np.array([ts], dtype=np.float64))

    def _drift(self, column: Any, ts: np.ndarray, rows: np.ndarray) -> list[KeyedChange]:
        """Drift tests, and the range monitor from the moment a numeric reference exists."""
        windowed = self.windowed
        assert windowed is not None
        split = self._reference_completes_after(column)
        out: list[KeyedChange] = []
        if split is not None:  # the reference completes inside this batch: the range starts right after it
            out += self._keyed("drift", shift_changes(windowed.update_many(column[:split], ts[:split]), rows))
            column, ts, rows = column[split:], ts[split:], rows[split:]
        out += self._keyed("drift", shift_changes(windowed.update_many(column, ts), rows))
        if self.out_of_range is None and isinstance(windowed.profile, NumericProfile) and split is not None:
            self._start_range(windowed.profile)
        if self.out_of_range is not None and len(column):
            finite = np.flatnonzero(np.isfinite(column))
            out += self._keyed(
                "out_of_range", shift_changes(self.out_of_range.update_many(column[finite], ts[finite]), rows[finite])
            )
        return out

    def _reference_completes_after(self, column: Any) -> int | None:
        """How many values of ``column`` complete the reference, if it is numeric, building, and they do."""
        builder = self.windowed.builder if self.windowed is not None else None
        if not self.numeric or builder is None:
            if (
                self.numeric
                and self.out_of_range is None
                and self.windowed is not None
                and isinstance(self.windowed.profile, NumericProfile)
            ):
                self._start_range(self.windowed.profile)  # an uploaded reference
            return None
        remaining = builder.size - builder.seen
        usable = np.flatnonzero(np.isfinite(column))
        return int(usable[remaining - 1]) + 1 if remaining <= len(usable) else None

    def _start_range(self, profile: NumericProfile) -> None:
        q = profile.quantiles
        iqr = float(q[3 * (len(q) - 1) // 4] - q[(len(q) - 1) // 4])
        expected = 2.0 / (profile.sample_size + 1)
        self.out_of_range = RangeMonitor(
            self.name,
            profile.min - iqr,
            profile.max + iqr,
            expected,
            self.missing.min_jump,
            window=self.window,
        )

    def _keyed(self, detector: str, changes: list[Change]) -> list[KeyedChange]:
        kind = "data_drift" if detector == "drift" else "data_quality"
        return [((kind, self.name, detector), change) for change in changes]

    def detectors(self) -> list[tuple[AlertKey, Any]]:
        """This feature's detectors, keyed as their alerts are."""
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
