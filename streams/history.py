"""A bounded history per model in Redis: one point per ``history_interval_s`` of event time.

Two capped streams per model, in the model's cluster slot (:class:`~streams.keys.RedisKeys`):

- ``...:history``: ``t`` (the model's event-time frontier: the newest event
  time decided on), its counts, ``status``, ``open_alerts`` and its rolling
  metrics (``accuracy``, ``estimated_accuracy``, ``mae``, ...);
- ``...:history:features``: ``t`` and, per feature (at most
  ``history_max_features``, the highest drift scores), its drift score and the
  last window's statistics.

With each point, ``...:distributions`` gets every feature's reference against
its recent values (:mod:`detectors.distributions`). The writer adds them to the
pipeline it sends anyway (:class:`~streams.redis_state.RedisStateWriter`), so
history costs no round trip. A point is due when the frontier enters a new
interval; a worker that restarts or takes a model over writes the current
interval's point again, and readers keep the last point of each interval.
Each stream holds ``ceil(retention / interval)`` points (trimmed approximately:
up to 100 more); readers drop points older than the retention in event time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors.distributions import window_distribution
from streams.keys import RedisKeys
from streams.settings import Settings
from streams.state import ModelState

COUNTS = ("predictions", "outcomes", "joined", "unmatched_outcomes", "expired", "invalid", "late_events")
FEATURE_STATS = ("drift_statistic", "window_psi", "window_ks", "window_wasserstein", "window_chi2", "window_unseen")
FEATURE_FIELDS = ("score", "psi", "ks", "wasserstein", "chi2", "unseen")  # in a point, in FEATURE_STATS' order


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(f"{x:.5g}")


@dataclass(frozen=True, slots=True)
class HistoryPolicy:
    """How often points are taken and how many are kept.

    >>> HistoryPolicy.of(Settings()).max_points
    10080
    """

    interval_s: float
    retention_s: float
    max_features: int

    @classmethod
    def of(cls, settings: Settings) -> HistoryPolicy:
        return cls(settings.history_interval_s, settings.history_retention_s, settings.history_max_features)

    @property
    def max_points(self) -> int:
        return max(1, math.ceil(self.retention_s / self.interval_s))

    def bucket(self, t: float) -> int:
        return math.floor(t / self.interval_s)


def model_point(state: ModelState, t: float) -> dict[str, Any]:
    """The model's point at event time ``t``: counts, status, open alerts and its rolling metrics."""
    summary = state.summary(now=0.0)
    point: dict[str, Any] = {"t": round(t, 3), "status": summary["status"], "open_alerts": summary["open_alerts"]}
    point |= {name: summary[name] for name in COUNTS}
    if "metric" in summary:
        point["metric"] = summary["metric"]
    for name, value in state.metrics().items():
        number = _number(value)
        if number is not None and not name.endswith("_total"):
            point[name] = number
    return point


def feature_point(state: ModelState, t: float, max_features: int) -> dict[str, Any]:
    """Every feature's drift score and window statistics at ``t`` (the ``max_features`` highest scores)."""
    monitor = state.monitor
    features: dict[str, dict[str, float]] = {}
    if monitor is not None:
        for name, feature in monitor.features.items():
            summary = feature.summary()
            stats = {key: _number(summary.get(stat)) for key, stat in zip(FEATURE_FIELDS, FEATURE_STATS, strict=True)}
            features[name] = {key: value for key, value in stats.items() if value is not None}
    ranked = sorted(features.items(), key=lambda kv: (-kv[1].get("score", 0.0), kv[0]))[:max_features]
    return {"t": round(t, 3), "features": dict(ranked)}


def distributions(state: ModelState) -> dict[str, bytes]:
    """Feature name -> JSON of its reference against its recent values, for the features that have one."""
    monitor = state.monitor
    found: dict[str, bytes] = {}
    if monitor is None:
        return found
    for name, feature in monitor.features.items():
        windowed = getattr(feature, "windowed", None)
        shown = window_distribution(windowed) if windowed is not None else None
        if shown is not None:
            found[name] = orjson.dumps(shown.to_dict())
    return found


@dataclass
class HistoryRecorder:
    """Decides when a model's next point is due and queues it on the writer's pipeline.

    It remembers only the interval of each model's last point (an integer per model).
    """

    keys: RedisKeys
    policy: HistoryPolicy
    last: dict[str, int] = field(default_factory=dict)

    def due(self, state: ModelState) -> float | None:
        """The event time of the model's next point if one is due now, else None."""
        t = state.buffer.frontier
        if state.monitor is None or not math.isfinite(t):
            return None
        bucket = self.policy.bucket(t)
        previous = self.last.get(state.model_id)
        return t if previous is None or bucket > previous else None

    def queue(self, pipe: Any, state: ModelState) -> int:
        """Add the model's point to ``pipe`` if one is due; return the commands queued."""
        t = self.due(state)
        if t is None:
            return 0
        self.last[state.model_id] = self.policy.bucket(t)
        keys, model_id, cap = self.keys, state.model_id, self.policy.max_points
        pipe.xadd(keys.history(model_id), {"p": orjson.dumps(model_point(state, t))}, maxlen=cap, approximate=True)
        features = orjson.dumps(feature_point(state, t, self.policy.max_features))
        pipe.xadd(keys.feature_history(model_id), {"p": features}, maxlen=cap, approximate=True)
        queued = 2
        shown = distributions(state)
        if shown:
            pipe.hset(keys.distributions(model_id), mapping=shown)
            queued += 1
        return queued


__all__ = ["HistoryPolicy", "HistoryRecorder", "distributions", "feature_point", "model_point"]
