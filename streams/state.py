"""The state of one model on its owning worker: counts, event-time order, the label join, the detectors."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from detectors import Alert, ModelMonitor, PairColumns, PredictionColumns, rfc3339
from detectors.alerts import STATUS_RANK, segment_key
from detectors.columns import FeatureValue
from detectors.monitor_config import FeatureBudget
from detectors.segments import SegmentMonitors
from streams.event_time import Event, EventTimeBuffer
from streams.events import OutcomeEvent, PredictionEvent  # noqa: F401 (OutcomeEvent: doctest)
from streams.history import HistoryMark, interval_chunks, take_mark
from streams.join import JoinedPair, LabelJoin
from streams.model_config import monitor_config, segment_monitors
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.model_config import ModelConfig

Released = tuple[int, float, PredictionEvent, str | None]  # position, event time for decisions, event, segment key


@dataclass
class ModelState:
    """Everything driftline keeps about one model.

    Events count as they arrive; they are decided on in event-time order once
    the watermark passes them (:class:`~streams.event_time.EventTimeBuffer`).
    Until a model has made ``model_probation_events`` predictions it has no
    detectors: its released events wait in ``probation``, and feed its
    detectors, in order, once it has them.

    >>> settings = Settings(max_disorder_s=0.0, model_probation_events=1)
    >>> state = ModelState.create("churn", settings)
    >>> state.arrive(PredictionEvent("churn", "p1", {"x": 1.0}, 1, 0.9, "v1", 100.0, None))
    >>> state.arrive(OutcomeEvent("churn", "p1", 1, 160.0))
    >>> state.release(final=True, settings=settings), state.join.joined, state.summary(now=0)["accuracy"]
    (2, 1, 1.0)
    """

    model_id: str
    join: LabelJoin
    buffer: EventTimeBuffer
    monitor: ModelMonitor | None = None
    segments: SegmentMonitors | None = None
    probation_predictions: list[Released] = field(default_factory=list)  # released before the model had detectors
    probation_pairs: list[tuple[int, JoinedPair]] = field(default_factory=list)
    predictions: int = 0
    outcomes: int = 0
    invalid: int = 0
    released: int = 0  # events released in event-time order: their positions
    released_predictions: int = 0
    last_event_at: float = 0.0
    model_version: str = ""

    def __post_init__(self) -> None:
        self.dirty = True  # changed since Redis last heard of it
        self.decided = True  # its detectors changed since Redis last heard of them (features, segments)
        self.changed = True  # changed since the last checkpoint
        self.history_marks: list[HistoryMark] = []  # history points taken since the last write (not checkpointed)

    @classmethod
    def create(cls, model_id: str, settings: Settings, file: ModelConfig | None = None) -> ModelState:
        join = LabelJoin(
            settings.lateness_budget_s,
            settings.outcome_grace_s,
            settings.max_pending_predictions,
            settings.max_pending_outcomes,
        )
        return cls(model_id, join, EventTimeBuffer(settings.max_disorder_s, settings.max_buffered_per_model))

    # -- arrival -----------------------------------------------------------------------------

    def arrive(self, event: Event) -> None:
        """Count one valid event and hold it for event-time order."""
        self.dirty = self.changed = True
        if isinstance(event, PredictionEvent):
            self.predictions += 1
        else:
            self.outcomes += 1
        if event.timestamp > self.last_event_at:
            self.last_event_at = event.timestamp
        self.buffer.add(event)

    def count_invalid(self, n: int = 1) -> None:
        self.dirty = self.changed = True
        self.invalid += n

    @property
    def late_events(self) -> int:
        return self.buffer.late_events

    # -- release: join and detectors, in event-time order ------------------------------------

    def release(
        self,
        final: bool,
        settings: Settings,
        file: ModelConfig | None = None,
        reference: dict[str, Any] | None = None,
        budget: FeatureBudget | None = None,
        keep: int | None = None,
    ) -> int:
        """Decide on the events the watermark has passed (all of them if ``final``); return how many.

        ``budget`` bounds the features its detectors may start monitoring; ``keep``
        how many events may stay held (a partition's bound). Where the events cross
        into a new ``history_interval_s`` of event time, a history point of the state
        as of that boundary goes to ``history_marks`` (:mod:`streams.history`), so
        history follows event time whatever the batches the events came in.
        """
        before = self.buffer.frontier
        ready = self.buffer.release(final, keep)
        if not ready:
            return 0
        self.dirty = self.changed = self.decided = True
        for boundary, part in interval_chunks(ready, before, settings.history_interval_s):
            if boundary is not None and self.monitor is not None:  # the state as of the interval's start
                self.history_marks.append(take_mark(self, boundary, settings.history_max_features))
            self._decide(part, settings, file, reference, budget)
        return len(ready)

    def _decide(
        self,
        ready: list[tuple[Event, float]],
        settings: Settings,
        file: ModelConfig | None,
        reference: dict[str, Any] | None,
        budget: FeatureBudget | None,
    ) -> None:
        """Join the released events and feed the detectors (or hold them while the model is on probation)."""
        predictions, pairs = self._join(ready)
        if self.monitor is not None:
            self._observe(predictions, pairs)
            return
        self.probation_predictions += predictions
        self.probation_pairs += pairs
        if self.released_predictions >= settings.model_probation_events:
            self._promote(settings, file, reference or {}, budget)

    def _join(self, ready: list[tuple[Event, float]]) -> tuple[list[Released], list[tuple[int, JoinedPair]]]:
        """Number the released events, join them; return the predictions and the pairs they made."""
        predictions: list[Released] = []
        pairs: list[tuple[int, JoinedPair]] = []
        for event, at in ready:
            seq = self.released
            self.released += 1
            if isinstance(event, PredictionEvent):
                segment = _segment(event)
                self.model_version = event.model_version
                predictions.append((seq, at, event, segment))
                pairs += [(seq, pair) for pair in self.join.add_prediction(event, at, segment)]
            else:
                pairs += [(seq, pair) for pair in self.join.add_outcome(event, at)]
        self.released_predictions += len(predictions)
        return predictions, pairs

    def _promote(
        self, settings: Settings, file: ModelConfig | None, reference: dict[str, Any], budget: FeatureBudget | None
    ) -> None:
        """The model has shown it is real: give it detectors, and feed them every event so far, in order."""
        config = monitor_config(settings, self.model_id, file)
        self.monitor = ModelMonitor(self.model_id, config)
        self.segments = segment_monitors(settings, self.model_id, config, file)
        self.set_budget(budget)
        if reference:
            self.monitor.set_reference(reference)
        self._observe(self.probation_predictions, self.probation_pairs)
        self.probation_predictions, self.probation_pairs = [], []

    def _observe(self, predictions: list[Released], pairs: list[tuple[int, JoinedPair]]) -> None:
        assert self.monitor is not None
        if predictions:
            batch = prediction_columns(predictions)
            self.monitor.observe_predictions(batch)
            if self.segments is not None:
                self.segments.observe_predictions(batch)
        if pairs:
            paired = pair_columns(pairs)
            self.monitor.observe_pairs(paired)
            if self.segments is not None:
                self.segments.observe_pairs(paired)

    def set_budget(self, budget: FeatureBudget | None) -> None:
        """Share the partition's feature budget with the model's detectors and its segments'."""
        if self.monitor is not None:
            self.monitor.budget = budget
        if self.segments is not None:
            self.segments.set_budget(budget)

    def monitored_features(self) -> int:
        """Features monitored by the model and its segments: what it takes of the partition's budget."""
        if self.monitor is None:
            return 0
        own = len(self.monitor.features)
        return own + (sum(len(m.features) for m in self.segments.monitors.values()) if self.segments else 0)

    # -- alerts and configuration ------------------------------------------------------------

    def alerts(self, now: float) -> list[Alert]:
        """Alert transitions of the model and of its segments since the last call."""
        if self.monitor is None:
            return []
        out = self.monitor.alerts(now)
        if self.segments is not None:
            out += self.segments.alerts(now, model=self.monitor)
        return out

    def configure(self, settings: Settings, file: ModelConfig | None) -> None:
        """Apply the model's file (or the defaults without one) to its running detectors."""
        self.dirty = self.changed = self.decided = True
        if self.monitor is None:
            return
        self.monitor.reconfigure(monitor_config(settings, self.model_id, file))
        fresh = segment_monitors(settings, self.model_id, self.monitor.config, file)
        if self.segments is None:
            self.segments = fresh
        else:
            self.segments.reconfigure(self.monitor.config, fresh.max_segments)

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests, the model's first; returns how many."""
        if self.monitor is None:
            return 0
        done = self.monitor.calibrate_pending(limit)
        if self.segments is not None and done < limit:
            done += self.segments.calibrate_pending(limit - done)
        return done

    def status(self) -> str:
        """The worst status of the model's and its segments' open alerts."""
        if self.monitor is None:
            return "ok"
        own = self.monitor.status()
        return own if self.segments is None else max(own, self.segments.status(), key=STATUS_RANK.__getitem__)

    def open_alerts(self) -> int:
        if self.monitor is None:
            return 0
        return len(self.monitor.alert_book.open) + (self.segments.open_alerts() if self.segments is not None else 0)

    def firing(self) -> list[Alert]:
        """The alerts firing now, the model's and its segments' (for metrics)."""
        if self.monitor is None:
            return []
        found = list(self.monitor.alert_book.open.values())
        if self.segments is not None:
            found += [alert for m in self.segments.monitors.values() for alert in m.alert_book.open.values()]
        return found

    def metrics(self) -> dict[str, float]:
        """The performance metrics of the Redis hash (accuracy, estimated_accuracy, mae, ...), for metrics."""
        monitor = self.monitor
        if monitor is None or monitor.performance is None or not monitor.performance.n:
            return {}
        return {k: float(v) for k, v in monitor.performance.summary().items() if isinstance(v, (int, float))}

    def summary(self, now: float | None = None) -> dict[str, str | int | float]:
        """The fields of the model's Redis hash."""
        join, monitor = self.join, self.monitor
        fields: dict[str, str | int | float] = {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "predictions": self.predictions,
            "outcomes": self.outcomes,
            "joined": join.joined,
            "unmatched_outcomes": join.unmatched_outcomes,
            "duplicate_outcomes": join.duplicate_outcomes,
            "expired": join.expired,
            "invalid": self.invalid,
            "late_events": self.late_events,
            "pending_predictions": len(join.pending),
            "pending_outcomes": len(join.early),
            "held_events": len(self.buffer),
            "features": len(monitor.features) if monitor is not None else 0,
            "overflow_feature_values": monitor.overflow_feature_values if monitor is not None else 0,
            "status": self.status(),
            "open_alerts": self.open_alerts(),
            "last_event_at": rfc3339(self.last_event_at) if self.last_event_at else "",
            "updated_at": rfc3339(time.time() if now is None else now),
        }
        if monitor is not None and monitor.performance is not None and monitor.performance.n:
            fields |= monitor.performance.summary()
        return fields


_SEGMENT_KEYS: dict[tuple[tuple[str, str], ...], str | None] = {}


def _segment(event: PredictionEvent) -> str | None:
    """The event's segment key (canonical JSON), cached: a model's segments repeat."""
    if not event.segment:
        return None
    labels = tuple(event.segment.items())
    found = _SEGMENT_KEYS.get(labels)
    if found is None and labels not in _SEGMENT_KEYS:
        if len(_SEGMENT_KEYS) > 100_000:
            _SEGMENT_KEYS.clear()
        found = _SEGMENT_KEYS[labels] = segment_key(dict(event.segment))
    return found


def prediction_columns(rows: list[Released]) -> PredictionColumns:
    """Released predictions as the columns detectors take."""
    n = len(rows)
    return PredictionColumns(
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        np.fromiter((r[1] for r in rows), dtype=np.float64, count=n),
        _feature_columns([r[2].features for r in rows]),
        np.fromiter((math.nan if r[2].score is None else r[2].score for r in rows), dtype=np.float64, count=n),
        [r[2].prediction for r in rows],
        [r[2].model_version for r in rows],
        [r[3] for r in rows],
    )


def _feature_columns(rows: list[Mapping[str, FeatureValue]]) -> dict[str, list[FeatureValue]]:
    """One list per feature, in the order features first appear; None where an event lacks one."""
    names = dict.fromkeys(rows[0]) if rows else {}
    k = len(names)
    if len(set().union(*rows)) != k:  # not every event has the first one's features
        names = dict.fromkeys(name for row in rows for name in row)
    elif k > 1 and all(len(row) == k for row in rows):  # every event has them all: a transpose, at C speed
        return dict(zip(names, map(list, zip(*map(itemgetter(*names), rows), strict=True)), strict=True))
    return {name: [row.get(name) for row in rows] for name in names}


def pair_columns(pairs: list[tuple[int, JoinedPair]]) -> PairColumns:
    """Joined pairs as the columns detectors take."""
    n = len(pairs)
    return PairColumns(
        np.fromiter((s for s, _ in pairs), dtype=np.int64, count=n),
        np.fromiter((p.timestamp for _, p in pairs), dtype=np.float64, count=n),
        [p.prediction for _, p in pairs],
        [p.label for _, p in pairs],
        np.fromiter((math.nan if p.score is None else p.score for _, p in pairs), dtype=np.float64, count=n),
        [p.segment for _, p in pairs],
    )
