"""Data quality: a feature that was not in the model's schema when it first appeared."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, as_times

__all__ = ["NewFeature"]


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
    >>> present = np.ones(30, dtype=bool)
    >>> [(c.index, c.active) for c in notice.update_many(present, 813.0 + np.arange(30))]
    [(9, True), (19, False)]
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
        self.update_many(np.array([present]), np.array([ts], dtype=np.float64))

    def update_many(self, present: np.ndarray, ts: np.ndarray | float) -> list[Change]:
        """Count events of the model in order; return where the condition started or stopped holding."""
        present = np.asarray(present, dtype=bool)
        times = as_times(ts, len(present))
        if not len(present):
            return []
        seen = self.seen + np.cumsum(present)
        since = self.since + np.arange(1, len(present) + 1)
        hit = (seen >= self.min_seen) & (seen * self.schema_events >= self.min_seen * since)
        noticed = np.logical_or.accumulate(hit) | self.noticed
        active = noticed & (seen < self.settle)
        last = np.maximum.accumulate(np.where(present, np.arange(len(present)), -1))
        flips = np.flatnonzero(active != np.r_[self.active, active[:-1]])
        changes = []
        for i in flips.tolist():
            self._set(i, seen, since, noticed, last, times)
            changes.append(Change(i, bool(active[i]), self.evidence()))
        self._set(len(present) - 1, seen, since, noticed, last, times)
        return changes

    def _set(
        self, i: int, seen: np.ndarray, since: np.ndarray, noticed: np.ndarray, last: np.ndarray, times: np.ndarray
    ) -> None:
        """The state right after the ``i``-th event of a batch."""
        self.seen, self.since, self.noticed = int(seen[i]), int(since[i]), bool(noticed[i])
        if last[i] >= 0:
            self.last_ts = float(times[last[i]])

    def evidence(self) -> Evidence:
        message = (
            f"{self.name}: a new feature, first seen in prediction {self.first_event + 1} of this model, "
            f"present in {self.seen} of the {self.since} predictions since"
        )
        return Evidence(
            "data_quality",
            self.name,
            "new_feature",
            float(self.seen),
            float(self.min_seen),
            self.seen,
            self.first_ts,
            max(self.last_ts, self.first_ts),
            "warning",
            message,
        )
