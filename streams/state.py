"""The state of one model on its owning worker: counts, the label join and the detectors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detectors import Alert, ModelMonitor, MonitorConfig, rfc3339
from detectors.alerts import segment_key
from detectors.segments import SegmentMonitors
from streams.events import OutcomeEvent, PredictionEvent
from streams.join import LabelJoin
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.model_config import ModelConfig


def monitor_config(settings: Settings, model_id: str, config: ModelConfig | None = None) -> MonitorConfig:
    """The detectors' configuration: the model's file (if any) over the worker's settings."""
    file: dict[str, Any] = config.model_dump(exclude_none=True) if config is not None else {}
    return MonitorConfig(
        baseline_events=file.get("baseline_events", settings.baseline_events),
        metric_window=file.get("metric_window", settings.metric_window),
        performance_min_drop=file.get("performance_min_drop", settings.performance_min_drop),
        missing_rate_min_jump=file.get("missing_rate_min_jump", settings.missing_rate_min_jump),
        max_features=settings.max_features_per_model,
        task=file.get("task") or settings.task_overrides.get(model_id),
        only_features=tuple(file["monitor_features"]) if "monitor_features" in file else None,
        ignore_features=tuple(file.get("ignore_features", ())),
        positive_class=file.get("positive_class"),
        alert_cooldown_s=settings.alert_cooldown_s,
        reference_events=file.get("reference_events", settings.reference_events),
        concept_drift_detector=file.get("concept_drift_detector"),
        window=file.get("drift_window", settings.drift_window),
        budget_events=file.get("false_alarm_budget_events", settings.false_alarm_budget_events),
    )


def segment_monitors(
    settings: Settings, model_id: str, config: MonitorConfig, file: ModelConfig | None = None,
) -> SegmentMonitors:
    """The model's segment monitors: its file's ``max_segments`` (if set) over the worker's settings."""
    limit = file.max_segments if file is not None and file.max_segments is not None else settings.max_segments
    return SegmentMonitors(
        model_id, config, max_segments=limit, selection_events=settings.segment_selection_events,
        min_events=settings.segment_min_events,
    )


_RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass
class ModelState:
    """Everything driftline keeps about one model."""

    model_id: str
    join: LabelJoin
    monitor: ModelMonitor
    predictions: int = 0
    outcomes: int = 0
    invalid: int = 0
    last_event_at: float = 0.0
    dirty: bool = True
    segments: SegmentMonitors | None = None  # None only in checkpoints older than segments

    @classmethod
    def create(
        cls, model_id: str, settings: Settings, config: MonitorConfig | None = None, file: ModelConfig | None = None,
    ) -> ModelState:
        join = LabelJoin(
            settings.lateness_budget_s, settings.outcome_grace_s,
            settings.max_pending_predictions, settings.max_pending_outcomes,
        )
        config = config or monitor_config(settings, model_id, file)
        segments = segment_monitors(settings, model_id, config, file)
        return cls(model_id, join, ModelMonitor(model_id, config), segments=segments)

    def configure(self, settings: Settings, file: ModelConfig | None, changed: bool = True) -> None:
        """Apply the model's file (or the defaults without one) to its running detectors.

        With ``changed`` false (a restored model), only fill in what an older
        checkpoint lacked and take a new segment cap from the settings.
        """
        if changed:
            self.monitor.reconfigure(monitor_config(settings, self.model_id, file))
        fresh = segment_monitors(settings, self.model_id, self.monitor.config, file)
        if self.segments is None:
            self.segments = fresh
        elif changed or fresh.max_segments != self.segments.max_segments:  # a new cap restarts the selection
            self.segments.reconfigure(self.monitor.config, fresh.max_segments)

    def apply(self, wire: dict[str, Any]) -> None:
        """Apply one validated event as forwarded on the internal events topic."""
        self.dirty = True
        kind = wire["type"]
        if kind == "prediction":
            event = PredictionEvent(
                self.model_id, wire["prediction_id"], wire["features"], wire["prediction"],
                wire["score"], wire["model_version"], wire["timestamp"], wire["segment"],
            )
            self.predictions += 1
            self._saw(event.timestamp)
            self.monitor.observe_prediction(
                event.features, event.score, event.timestamp, event.model_version, event.prediction
            )
            segment = segment_key(event.segment) if event.segment else None
            if segment is not None and self.segments is not None:
                self.segments.observe_prediction(
                    segment, event.features, event.score, event.timestamp, event.model_version, event.prediction
                )
            pairs = self.join.add_prediction(event, segment)
        elif kind == "outcome":
            outcome = OutcomeEvent(self.model_id, wire["prediction_id"], wire["label"], wire["timestamp"])
            self.outcomes += 1
            self._saw(outcome.timestamp)
            pairs = self.join.add_outcome(outcome)
        else:
            self.invalid += 1
            return
        for pair in pairs:
            self.monitor.observe_outcome(pair.prediction, pair.label, pair.timestamp, pair.score)
            if pair.segment is not None and self.segments is not None:
                self.segments.observe_outcome(pair.segment, pair.prediction, pair.label, pair.timestamp, pair.score)

    def _saw(self, ts: float) -> None:
        if ts > self.last_event_at:
            self.last_event_at = ts

    def alerts(self, now: float) -> list[Alert]:
        """Alert transitions of the model and of its segments."""
        if self.segments is None:
            return self.monitor.alerts(now)
        model = self.monitor.alerts(now)
        return model + self.segments.alerts(now, suppress=set(self.monitor.book.open))

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests, the model's first; returns how many."""
        done = self.monitor.calibrate_pending(limit)
        if self.segments is not None and done < limit:
            done += self.segments.calibrate_pending(limit - done)
        return done

    def status(self) -> str:
        """The worst status of the model's and its segments' open alerts."""
        own = self.monitor.status()
        return own if self.segments is None else max(own, self.segments.status(), key=_RANK.__getitem__)

    def open_alerts(self) -> int:
        return len(self.monitor.book.open) + (self.segments.open_alerts() if self.segments is not None else 0)

    def summary(self, now: float | None = None) -> dict[str, str | int | float]:
        """The fields of the model's Redis hash."""
        join, monitor = self.join, self.monitor
        fields: dict[str, str | int | float] = {
            "model_id": self.model_id,
            "model_version": monitor.model_version,
            "predictions": self.predictions,
            "outcomes": self.outcomes,
            "joined": join.joined,
            "unmatched_outcomes": join.unmatched_outcomes,
            "duplicate_outcomes": join.duplicate_outcomes,
            "expired": join.expired,
            "invalid": self.invalid,
            "pending_predictions": len(join.pending),
            "pending_outcomes": len(join.early),
            "features": len(monitor.features),
            "overflow_feature_values": monitor.overflow_feature_values,
            "status": self.status(),
            "open_alerts": self.open_alerts(),
            "last_event_at": rfc3339(self.last_event_at) if self.last_event_at else "",
            "updated_at": rfc3339(time.time() if now is None else now),
        }
        if monitor.performance is not None and monitor.performance.n:
            fields |= monitor.performance.summary()
        return fields
