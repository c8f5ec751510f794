"""The state of one model on its owning worker: counts, the label join and the detectors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detectors import Alert, ModelMonitor, MonitorConfig, rfc3339
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
        adwin_delta=settings.adwin_delta,
        drift_min_effect=file.get("drift_min_effect", settings.drift_min_effect),
        performance_min_drop=file.get("performance_min_drop", settings.performance_min_drop),
        missing_rate_min_jump=file.get("missing_rate_min_jump", settings.missing_rate_min_jump),
        max_features=settings.max_features_per_model,
        task=file.get("task") or settings.task_overrides.get(model_id),
        only_features=tuple(file["monitor_features"]) if "monitor_features" in file else None,
        ignore_features=tuple(file.get("ignore_features", ())),
        positive_class=file.get("positive_class"),
        alert_cooldown_s=settings.alert_cooldown_s,
        reference_events=settings.reference_events,
        budget_events=file.get("false_alarm_budget_events", settings.false_alarm_budget_events),
    )


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

    @classmethod
    def create(cls, model_id: str, settings: Settings, config: MonitorConfig | None = None) -> ModelState:
        join = LabelJoin(
            settings.lateness_budget_s, settings.outcome_grace_s,
            settings.max_pending_predictions, settings.max_pending_outcomes,
        )
        return cls(model_id, join, ModelMonitor(model_id, config or monitor_config(settings, model_id)))

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
            pairs = self.join.add_prediction(event)
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

    def _saw(self, ts: float) -> None:
        if ts > self.last_event_at:
            self.last_event_at = ts

    def alerts(self, now: float) -> list[Alert]:
        return self.monitor.alerts(now)

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
            "status": monitor.status(),
            "open_alerts": len(monitor.book.open),
            "last_event_at": rfc3339(self.last_event_at) if self.last_event_at else "",
            "updated_at": rfc3339(time.time() if now is None else now),
        }
        if monitor.performance is not None and monitor.performance.n:
            fields |= monitor.performance.summary()
        return fields
