"""A bounded history per model in Redis: one point per ``history_interval_s`` of event time.

Two capped streams per model, in the model's cluster slot (:class:`~streams.keys.RedisKeys`):

- ``...:history``: ``t`` (the start of an interval of event time: the point
  is the model as of then), its counts, ``status``, ``open_alerts`` and its
  rolling metrics (``accuracy``, ``estimated_accuracy``, ``mae``, ...);
- ``...:history:features``: ``t`` and, per feature (at most
  ``history_max_features``, the highest drift scores), its drift score and the
  last window's statistics, stored compact (values in ``FEATURE_FIELDS`` order).

With each point, ``...:distributions`` gets every feature's reference against
its recent values (:mod:`detectors.distributions`). A point is taken where a
model's released events cross into a new interval of event time
(:meth:`~streams.state.ModelState.release`): the state as of that boundary,
whatever batches the events came in, live or replayed. The writer adds the
points to the pipeline it sends anyway (:class:`~streams.redis_state.RedisStateWriter`),
so history costs no round trip. A worker that restarts from a checkpoint, or
takes a model over, takes the points after the checkpoint again; readers keep
the last point of each interval. Each stream holds ``ceil(retention / interval)`` points (trimmed approximately:
up to 100 more); readers drop points older than the retention in event time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from detectors.distributions import window_distribution
from streams.keys import RedisKeys
from streams.settings import Settings

if TYPE_CHECKING:
    from detectors.model_monitor import ModelMonitor
    from streams.join import LabelJoin


class ModelState(Protocol):
    """What history reads of a model's state (:class:`streams.state.ModelState`, which imports this module)."""

    model_id: str
    monitor: ModelMonitor | None
    released: int
    released_predictions: int
    history_marks: list[HistoryMark]
    join: LabelJoin
    invalid: int

    @property
    def late_events(self) -> int: ...

    def status(self) -> str: ...

    def open_alerts(self) -> int: ...


# in a point: the drift score, then the last window's statistics
FEATURE_FIELDS = ("score", "psi", "ks", "wasserstein", "chi2", "unseen")


def _number(x: Any, digits: int = 5) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


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
    """The model's point at event time ``t``: counts, status, open alerts and its rolling metrics.

    ``predictions`` and ``outcomes`` count the events decided on before ``t``, and
    so do the join's counts and the metrics; ``invalid`` and ``late_events`` count
    arrivals; ``status`` and ``open_alerts`` are those of the alerts decided so far.
    """
    join = state.join
    point: dict[str, Any] = {
        "t": round(t, 3),
        "status": state.status(),
        "open_alerts": state.open_alerts(),
        "predictions": state.released_predictions,  # decided on by t, not arrived: the same for any batching
        "outcomes": state.released - state.released_predictions,
        "joined": join.joined,
        "unmatched_outcomes": join.unmatched_outcomes,
        "expired": join.expired,
        "invalid": state.invalid,
        "late_events": state.late_events,
    }
    performance = state.monitor.performance if state.monitor is not None else None
    if performance is None or not performance.n:
        return point
    fields = performance.summary()
    point["metric"] = fields["metric"]
    for name, value in fields.items():
        number = _number(float(value)) if isinstance(value, (int, float)) else None
        if number is not None and not name.endswith("_total"):
            point[name] = number
    return point


def feature_point(state: ModelState, t: float, max_features: int) -> dict[str, Any]:
    """Every feature's drift score and window statistics at ``t`` (the ``max_features`` highest scores).

    Stored compact: each feature's values in ``FEATURE_FIELDS`` order, null where a
    statistic does not apply (:func:`streams.history_read.feature_stats` reads them).
    """
    monitor = state.monitor
    features: dict[str, list[float | None]] = {}
    if monitor is not None:
        for name, feature in monitor.features.items():
            stats = [_number(round(feature.drift_score, 6), 4)]
            if feature.windowed is not None and feature.windowed.stats:
                window = feature.windowed.stats
                stats += [_number(_rounded(window.get(stat)), 4) for stat in FEATURE_FIELDS[1:]]
            while stats and stats[-1] is None:
                stats.pop()
            features[name] = stats
    ranked = sorted(features.items(), key=lambda kv: (-(kv[1][0] or 0.0) if kv[1] else 0.0, kv[0]))[:max_features]
    return {"t": round(t, 3), "features": dict(ranked)}


def _rounded(value: float | None) -> float | None:
    """A window statistic as the model's summary shows it (6 decimals)."""
    return None if value is None else round(value, 6)


@dataclass(frozen=True, slots=True)
class HistoryMark:
    """One history point, taken at an interval's boundary, waiting for the next write."""

    model: bytes  # JSON of model_point
    features: bytes  # JSON of feature_point


def take_mark(state: ModelState, t: float, max_features: int) -> HistoryMark:
    """The state's point as of event time ``t``."""
    return HistoryMark(orjson.dumps(model_point(state, t)), orjson.dumps(feature_point(state, t, max_features)))


def interval_chunks(
    ready: list[tuple[Any, float]], frontier: float, interval_s: float
) -> Iterator[tuple[float | None, list[tuple[Any, float]]]]:
    """Released events (in event-time order) cut where they enter a new interval after ``frontier``,
    each chunk with the boundary before it (None: no boundary).

    >>> chunks = interval_chunks([("a", 50.0), ("b", 70.0), ("c", 80.0), ("d", 250.0)], 10.0, 60.0)
    >>> [(b, [e for e, _ in part]) for b, part in chunks]
    [(None, ['a']), (60.0, ['b', 'c']), (240.0, ['d'])]
    """
    bucket = math.floor(frontier / interval_s) if math.isfinite(frontier) else None
    if ready and math.floor(ready[-1][1] / interval_s) <= (bucket if bucket is not None else ready[0][1] // interval_s):
        yield None, ready  # the usual case, live: no boundary crossed (the events are in event-time order)
        return
    boundary: float | None = None
    start = 0
    for i, (_, at) in enumerate(ready):
        current = math.floor(at / interval_s)
        if bucket is None:
            bucket = current
        if current > bucket:
            if i > start:
                yield boundary, ready[start:i]
            boundary, start, bucket = current * interval_s, i, current
    if ready:
        yield boundary, ready[start:]


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
    """Queues the points a model took since the last write on the writer's pipeline, with its distributions."""

    keys: RedisKeys
    policy: HistoryPolicy

    def queue(self, pipe: Any, state: ModelState) -> int:
        """Add the model's new points to ``pipe``; return the commands queued. The writer clears
        ``state.history_marks`` once the pipeline went through."""
        marks = state.history_marks
        if not marks:
            return 0
        keys, model_id, cap = self.keys, state.model_id, self.policy.max_points
        for mark in marks:
            pipe.xadd(keys.history(model_id), {"p": mark.model}, maxlen=cap, approximate=True)
            pipe.xadd(keys.feature_history(model_id), {"p": mark.features}, maxlen=cap, approximate=True)
        shown = distributions(state)
        if shown:
            pipe.hset(keys.distributions(model_id), mapping=shown)
        return 2 * len(marks) + bool(shown)


__all__ = [
    "HistoryMark",
    "HistoryPolicy",
    "HistoryRecorder",
    "distributions",
    "feature_point",
    "interval_chunks",
    "model_point",
    "take_mark",
]
