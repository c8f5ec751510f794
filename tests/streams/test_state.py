"""ModelState: one model's counts, label join and detectors, fed with internal wire events."""
from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from detectors import rfc3339
from streams.events import OutcomeEvent, PredictionEvent
from streams.settings import Settings
from streams.state import ModelState

CONTRACT_FIELDS = {
    "predictions", "outcomes", "joined", "unmatched_outcomes", "expired", "invalid", "status", "open_alerts",
    "last_event_at", "updated_at",
}
T0 = 1_767_225_600.0


def prediction(pid: str, ts: float, value: Any = 1, features: dict[str, Any] | None = None,
               model_id: str = "churn", **extra: Any) -> dict[str, Any]:
    obj = {"model_id": model_id, "prediction_id": pid, "features": features or {"x": 1.0}, "prediction": value,
           "timestamp": ts, **extra}
    return PredictionEvent.parse(obj, record_ts=0.0).to_wire()


def outcome(pid: str, ts: float, label: Any = 1, model_id: str = "churn") -> dict[str, Any]:
    obj = {"model_id": model_id, "prediction_id": pid, "label": label, "timestamp": ts}
    return OutcomeEvent.parse(obj, record_ts=0.0).to_wire()


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_a_new_model_has_every_contract_field(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    summary = state.summary(now=T0)
    assert CONTRACT_FIELDS <= set(summary)
    assert {k: summary[k] for k in CONTRACT_FIELDS - {"updated_at", "last_event_at", "status"}} == dict.fromkeys(
        CONTRACT_FIELDS - {"updated_at", "last_event_at", "status"}, 0)
    assert summary["status"] == "ok"
    assert summary["updated_at"] == rfc3339(T0)
    assert "accuracy" not in summary and "mae" not in summary  # no labels yet


def test_apply_counts_each_kind_of_event(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    state.apply(prediction("p1", T0, model_version="v7"))
    state.apply(prediction("p2", T0 + 1))
    state.apply(outcome("p1", T0 + 2))  # joins
    state.apply(outcome("p1", T0 + 3))  # duplicate
    state.apply(outcome("zzz", T0 + 4))  # no prediction yet
    state.apply({"type": "invalid", "model_id": "churn"})
    state.apply({"type": "invalid", "model_id": "churn", "o": 12})
    summary = state.summary(now=T0 + 10)
    assert {k: summary[k] for k in ("predictions", "outcomes", "joined", "invalid", "duplicate_outcomes")} == {
        "predictions": 2, "outcomes": 3, "joined": 1, "invalid": 2, "duplicate_outcomes": 1}
    assert (summary["pending_predictions"], summary["pending_outcomes"]) == (1, 1)
    assert (summary["unmatched_outcomes"], summary["expired"]) == (0, 0)
    assert summary["last_event_at"] == rfc3339(T0 + 4)
    assert summary["updated_at"] == rfc3339(T0 + 10)
    assert summary["model_version"] == ""  # the latest prediction's version
    assert state.dirty


def test_wire_events_with_a_source_offset_apply_the_same(settings: Settings) -> None:
    plain, tagged = ModelState.create("churn", settings), ModelState.create("churn", settings)
    for i, wire in enumerate([prediction("p1", T0), outcome("p1", T0 + 1)]):
        plain.apply(wire)
        tagged.apply({**wire, "o": i})
    assert plain.summary(now=T0) == tagged.summary(now=T0)


def test_unmatched_and_expired_reach_the_summary() -> None:
    state = ModelState.create("churn", Settings(lateness_budget_s=60.0, outcome_grace_s=30.0))
    state.apply(outcome("early", T0))
    state.apply(prediction("p1", T0 + 1))
    state.apply(prediction("p2", T0 + 100))  # past the grace of "early" and the budget of p1
    summary = state.summary(now=T0)
    assert (summary["unmatched_outcomes"], summary["expired"]) == (1, 1)


def test_last_event_at_is_the_latest_event_time_not_the_latest_arrival(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    state.apply(prediction("p1", T0 + 50))
    state.apply(prediction("p2", T0))
    state.apply(outcome("p2", T0 + 10))
    assert parse_rfc3339(str(state.summary(now=T0)["last_event_at"])) == T0 + 50


def test_classification_summary_has_accuracy_once_labels_join(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    for i in range(10):
        state.apply(prediction(f"p{i}", T0 + i, value="yes"))
        state.apply(outcome(f"p{i}", T0 + i, label="yes" if i < 8 else "no"))
    summary = state.summary(now=T0)
    assert summary["joined"] == 10
    assert summary["task"] == "classification" and summary["metric"] == "accuracy"
    assert summary["accuracy"] == 0.8
    assert summary["accuracy_total"] == 0.8
    assert "mae" not in summary


def test_regression_summary_has_mae_once_labels_join(settings: Settings) -> None:
    state = ModelState.create("price", settings)
    for i in range(4):
        state.apply(prediction(f"p{i}", T0 + i, value=10.5, model_id="price"))
        state.apply(outcome(f"p{i}", T0 + i, label=10.0 + i, model_id="price"))
    summary = state.summary(now=T0)
    assert summary["task"] == "regression"
    assert summary["mae"] == pytest.approx((0.5 + 0.5 + 1.5 + 2.5) / 4)
    assert "accuracy" not in summary


def test_outcome_before_prediction_updates_the_metric(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    state.apply(outcome("p1", T0, label=1))
    assert "accuracy" not in state.summary(now=T0)
    state.apply(prediction("p1", T0 - 5, value=1))
    assert state.summary(now=T0)["accuracy"] == 1.0


@pytest.mark.parametrize("override,value,label,metric", [
    ("regression", 3, 5, ("mae", 2.0)),  # integer predictions, but a regression model
    ("classification", 1.0, 1.0, ("accuracy", 1.0)),  # float predictions, but a classifier
])
def test_task_overrides_force_the_task(override: str, value: Any, label: Any, metric: tuple[str, float]) -> None:
    settings = Settings(task_overrides={"forced": override})
    forced, inferred = ModelState.create("forced", settings), ModelState.create("other", settings)
    for state in (forced, inferred):
        state.apply(prediction("p1", T0, value=value, model_id=state.model_id))
        state.apply(outcome("p1", T0, label=label, model_id=state.model_id))
    summary = forced.summary(now=T0)
    assert summary["task"] == override
    assert summary[metric[0]] == pytest.approx(metric[1])
    assert inferred.summary(now=T0)["task"] != override  # only the named model is forced


def test_status_and_open_alerts_follow_the_detectors(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    rng = random.Random(11)
    fired = []
    for i in range(3000):
        x = rng.gauss(0.0 if i < 1500 else 2.0, 1.0)
        state.apply(prediction(f"p{i}", T0 + i, features={"x": x}))
        fired += state.alerts(now=T0 + i)
    summary = state.summary(now=T0)
    assert [a.evidence.kind for a in fired] == ["data_drift"]
    assert summary["open_alerts"] == 1
    assert summary["status"] in ("warning", "critical")
    assert summary["status"] == fired[0].evidence.severity


def test_summary_values_are_redis_friendly(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    state.apply(prediction("p1", T0))
    state.apply(outcome("p1", T0))
    for name, value in state.summary(now=T0).items():
        assert isinstance(value, (str, int, float)) and not isinstance(value, bool), name
