"""ModelState: one model's counts, event-time order, label join and detectors."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from detectors import rfc3339
from streams.settings import Settings
from streams.state import ModelState, _feature_columns
from tests.streams.feeding import feed, outcome, prediction

CONTRACT_FIELDS = {
    "predictions",
    "outcomes",
    "joined",
    "unmatched_outcomes",
    "expired",
    "invalid",
    "status",
    "open_alerts",
    "last_event_at",
    "updated_at",
    "late_events",
}
T0 = 1_767_225_600.0


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def settings() -> Settings:
    return Settings(model_probation_events=1)


def test_a_new_model_has_every_contract_field(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    summary = state.summary(now=T0)
    assert CONTRACT_FIELDS <= set(summary)
    zero = CONTRACT_FIELDS - {"updated_at", "last_event_at", "status"}
    assert {k: summary[k] for k in zero} == dict.fromkeys(zero, 0)
    assert summary["status"] == "ok"
    assert summary["updated_at"] == rfc3339(T0)
    assert "accuracy" not in summary and "mae" not in summary  # no labels yet


def test_each_kind_of_event_is_counted_as_it_arrives(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    for event in [
        prediction("p1", T0, version="v7"),
        prediction("p2", T0 + 1),
        outcome("p1", T0 + 2),
        outcome("p1", T0 + 3),
        outcome("zzz", T0 + 4),
    ]:
        state.arrive(event)
    state.count_invalid(2)
    summary = state.summary(now=T0 + 10)
    assert {k: summary[k] for k in ("predictions", "outcomes", "invalid", "joined", "held_events")} == {
        "predictions": 2,
        "outcomes": 3,
        "invalid": 2,
        "joined": 0,
        "held_events": 5,
    }  # counted, not yet decided
    state.release(True, settings)
    summary = state.summary(now=T0 + 10)
    assert {k: summary[k] for k in ("joined", "duplicate_outcomes", "pending_predictions", "pending_outcomes")} == {
        "joined": 1,
        "duplicate_outcomes": 1,
        "pending_predictions": 1,
        "pending_outcomes": 1,
    }
    assert summary["last_event_at"] == rfc3339(T0 + 4)
    assert summary["model_version"] == ""  # the latest prediction's version, in event time


def test_an_event_later_than_the_bound_counts_in_late_events_and_still_joins() -> None:
    settings = Settings(max_disorder_s=10.0, model_probation_events=1)
    state = ModelState.create("churn", settings)
    for i in range(100):
        state.arrive(prediction(f"p{i}", T0 + i))
    state.release(False, settings)  # decided up to T0 + 89
    state.arrive(prediction("old", T0 - 300))  # five minutes late: a partition read after the others
    state.arrive(outcome("old", T0 + 200))
    state.release(True, settings)
    summary = state.summary(now=T0)
    assert (summary["predictions"], summary["late_events"], summary["joined"]) == (101, 1, 1)


def test_unmatched_and_expired_reach_the_summary() -> None:
    settings = Settings(lateness_budget_s=60.0, outcome_grace_s=30.0, model_probation_events=1)
    state = ModelState.create("churn", settings)
    feed(state, [outcome("early", T0), prediction("p1", T0 + 1), prediction("p2", T0 + 100)], settings)
    summary = state.summary(now=T0)
    assert (summary["unmatched_outcomes"], summary["expired"]) == (1, 1)


def test_last_event_at_is_the_latest_event_time_not_the_latest_arrival(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    feed(state, [prediction("p1", T0 + 50), prediction("p2", T0), outcome("p2", T0 + 10)], settings)
    assert parse_rfc3339(str(state.summary(now=T0)["last_event_at"])) == T0 + 50


def test_classification_summary_has_accuracy_once_labels_join(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    events = [
        e
        for i in range(10)
        for e in (prediction(f"p{i}", T0 + i, value="yes"), outcome(f"p{i}", T0 + i, label="yes" if i < 8 else "no"))
    ]
    feed(state, events, settings)
    summary = state.summary(now=T0)
    assert summary["joined"] == 10
    assert summary["task"] == "classification" and summary["metric"] == "accuracy"
    assert summary["accuracy"] == 0.8 and summary["accuracy_total"] == 0.8
    assert "mae" not in summary


def test_regression_summary_has_mae_once_labels_join(settings: Settings) -> None:
    state = ModelState.create("price", settings)
    events = [
        e
        for i in range(4)
        for e in (
            prediction(f"p{i}", T0 + i, value=10.5, model_id="price"),
            outcome(f"p{i}", T0 + i, label=10.0 + i, model_id="price"),
        )
    ]
    feed(state, events, settings)
    summary = state.summary(now=T0)
    assert summary["task"] == "regression"
    assert summary["mae"] == pytest.approx((0.5 + 0.5 + 1.5 + 2.5) / 4)
    assert "accuracy" not in summary


def test_an_outcome_before_its_prediction_updates_the_metric(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    feed(state, [outcome("p1", T0, label=1)], settings)
    assert "accuracy" not in state.summary(now=T0)
    feed(state, [prediction("p1", T0 - 5, value=1)], settings)
    assert state.summary(now=T0)["accuracy"] == 1.0


@pytest.mark.parametrize(
    "override,value,label,metric",
    [
        ("regression", 3, 5, ("mae", 2.0)),  # integer predictions, but a regression model
        ("classification", 1.0, 1.0, ("accuracy", 1.0)),  # float predictions, but a classifier
    ],
)
def test_task_overrides_force_the_task(override: str, value: Any, label: Any, metric: tuple[str, float]) -> None:
    settings = Settings(task_overrides={"forced": override}, model_probation_events=1)
    forced, inferred = ModelState.create("forced", settings), ModelState.create("other", settings)
    for state in (forced, inferred):
        feed(
            state,
            [
                prediction("p1", T0, value=value, model_id=state.model_id),
                outcome("p1", T0, label=label, model_id=state.model_id),
            ],
            settings,
        )
    summary = forced.summary(now=T0)
    assert summary["task"] == override
    assert summary[metric[0]] == pytest.approx(metric[1])
    assert inferred.summary(now=T0)["task"] != override  # only the named model is forced


def test_status_and_open_alerts_follow_the_detectors(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    rng = random.Random(11)
    events = [
        prediction(f"p{i}", T0 + i, features={"x": rng.gauss(0.0 if i < 1500 else 2.0, 1.0)}) for i in range(3000)
    ]
    fired = feed(state, events, settings, every=50)
    summary = state.summary(now=T0)
    assert [a.evidence.kind for a in fired] == ["data_drift"]
    assert summary["open_alerts"] == 1
    assert summary["status"] == fired[0].evidence.severity in ("warning", "critical")


def test_summary_values_are_redis_friendly(settings: Settings) -> None:
    state = ModelState.create("churn", settings)
    feed(state, [prediction("p1", T0), outcome("p1", T0)], settings)
    for name, value in state.summary(now=T0).items():
        assert isinstance(value, (str, int, float)) and not isinstance(value, bool), name


def test_a_model_gets_detectors_only_after_its_probation_and_they_see_every_event() -> None:
    settings = Settings(model_probation_events=10)
    state = ModelState.create("m", settings)
    feed(
        state,
        [prediction(f"p{i}", T0 + i, features={"x": float(i)}) for i in range(9)] + [outcome("p0", T0 + 9)],
        settings,
    )
    assert state.monitor is None and state.join.joined == 1  # counted and joined, no detectors yet
    feed(state, [prediction("p9", T0 + 10, features={"x": 9.0})], settings)
    assert state.monitor is not None
    assert state.monitor.features["x"].missing.n == 10 and state.monitor.performance is not None


def _drifting(seed: int) -> list[Any]:
    rng = random.Random(seed)
    events: list[Any] = []
    for i in range(2600):
        ts = T0 + i * 0.5
        events.append(
            prediction(
                f"p{i}",
                ts,
                value=int(rng.random() < 0.5),
                features={"x": rng.gauss(0.0 if i < 1800 else 1.5, 1.0), "c": rng.choice("ab")},
            )
        )
        if i % 2:
            events.append(outcome(f"p{i - 1}", ts + 3.0, label=int(rng.random() < 0.5)))
    return events


@hsettings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 1000), shuffle=st.integers(0, 10**6), every=st.sampled_from([1, 37, 400]))
def test_any_arrival_order_within_the_bound_gives_the_same_decisions(seed: int, shuffle: int, every: int) -> None:
    """Events displaced by less than the disorder bound: the same joins, counts and alerts as in event-time order."""
    settings = Settings(max_disorder_s=10.0, model_probation_events=5)
    events = _drifting(seed)
    rng = random.Random(shuffle)
    noisy = sorted(events, key=lambda e: e.timestamp + rng.uniform(0, 9.5))  # each moves by less than the bound
    runs = []
    for order, step in ((events, 1), (noisy, every)):
        state = ModelState.create("churn", settings)
        alerts = feed(state, order, settings, every=step)
        runs.append(
            (
                [(a.alert_id, a.status, a.evidence.window_start, a.evidence.window_end) for a in alerts],
                {k: v for k, v in state.summary(now=0).items() if k != "updated_at"},
            )
        )
        assert state.late_events == 0
        assert all(a.evidence.window_start <= a.evidence.window_end for a in alerts)
    assert runs[0] == runs[1]
    assert any(status == "firing" for _, status, _, _ in runs[0][0])


@hsettings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d"]), st.one_of(st.none(), st.integers(), st.text(max_size=2))
        ),
        max_size=12,
    )
)
def test_feature_columns_hold_each_events_value_or_none_in_first_seen_order(rows: list[dict[str, Any]]) -> None:
    columns = _feature_columns(rows)
    names = list(dict.fromkeys(name for row in rows for name in row))
    assert list(columns) == names
    assert all(columns[name] == [row.get(name) for row in rows] and type(columns[name]) is list for name in names)
