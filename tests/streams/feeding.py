"""Feeding a model's state the way the pipeline does: events arrive, the watermark releases them."""

from __future__ import annotations

from typing import Any

from detectors import Alert
from streams.events import OutcomeEvent, PredictionEvent
from streams.settings import Settings
from streams.state import ModelState

Event = PredictionEvent | OutcomeEvent


def feed(state: ModelState, events: list[Event], settings: Settings, every: int = 1) -> list[Alert]:
    """Arrive each event; every ``every`` events release what the watermark allows and take the alerts.

    At the end everything held is released, as when input goes idle.
    """
    alerts: list[Alert] = []
    for i, event in enumerate(events, 1):
        state.arrive(event)
        if i % every == 0:
            state.release(False, settings)
            alerts += state.alerts(now=0.0)
    state.release(True, settings)
    return alerts + state.alerts(now=0.0)


def prediction(
    pid: str,
    ts: float,
    value: Any = 1,
    features: dict[str, Any] | None = None,
    model_id: str = "churn",
    version: str = "",
    score: float | None = None,
    segment: dict[str, str] | None = None,
) -> PredictionEvent:
    return PredictionEvent(model_id, pid, features or {"x": 1.0}, value, score, version, ts, segment)


def outcome(pid: str, ts: float, label: Any = 1, model_id: str = "churn") -> OutcomeEvent:
    return OutcomeEvent(model_id, pid, label, ts)
