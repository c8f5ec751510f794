"""The worker's /metrics: names and labels of the contract, values read from the owned tasks at scrape time."""

from __future__ import annotations

import random
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from streams.metrics import METRIC_NAMES, DriftCap, WorkerMetrics
from streams.pipeline import PipelineStats
from streams.settings import Settings
from streams.tasks import TaskState
from tests.streams.feeding import feed, outcome, prediction

SETTINGS = Settings(model_probation_events=10, max_disorder_s=0.0)

# The contract (CONTRACT.md v1.1 and the README's metrics table): name -> label names.
CONTRACT = {
    "driftline_predictions_total": {"model"},
    "driftline_outcomes_total": {"model"},
    "driftline_joined_total": {"model"},
    "driftline_dead_letters_total": set(),
    "driftline_alerts_open": {"model", "kind", "severity"},
    "driftline_model_metric": {"model", "metric"},
    "driftline_feature_drift_score": {"model", "feature"},
    "driftline_consumer_lag": {"topic", "partition"},
}


def _drifting_model(task: TaskState, model: str, n: int, labels: bool) -> None:
    """``n`` predictions whose x shifts by 3 std from event 1,500 on (a data-drift alert that stays open)."""
    rng = random.Random(len(model))
    state = task.model(model)
    assert state is not None
    events = []
    for i in range(n):
        x = rng.gauss(3.0 if i >= 1500 else 0.0, 1.0)
        events.append(
            prediction(
                str(i),
                1000.0 + i,
                int(x > 0),
                {"x": x, "y": rng.random(), "z": rng.random()},
                model_id=model,
                score=0.7,
            )
        )
        if labels:
            events.append(outcome(str(i), 1000.0 + i, label=int(i % 5 != 0), model_id=model))
    feed(state, events, SETTINGS, every=100)


def _scrape(metrics: WorkerMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _pipeline(*tasks: TaskState, dead_letters: int = 0) -> SimpleNamespace:
    return SimpleNamespace(tasks={t.partition: t for t in tasks}, stats=PipelineStats(dead_letters=dead_letters))


def test_names_labels_and_values_follow_the_owned_tasks() -> None:
    first, second = TaskState(0, SETTINGS), TaskState(1, SETTINGS)
    _drifting_model(first, "churn", 2000, labels=True)
    _drifting_model(second, "fraud", 600, labels=False)
    pipeline = _pipeline(first, second, dead_letters=3)
    lags = {("t.predictions", 0): 7, ("t.events", 1): 0}
    metrics = WorkerMetrics(pipeline, lambda: lags, DriftCap(per_model=10, total=100))
    metrics.observe("flush", 0.002)
    metrics.observe("checkpoint", 0.02)
    scraped = _scrape(metrics)

    assert set(CONTRACT) <= {name for name in scraped}
    for name, labels in CONTRACT.items():
        assert all(set(sample_labels) == labels for sample_labels, _ in scraped[name]), name
    counts = {labels["model"]: value for labels, value in scraped["driftline_predictions_total"]}
    assert counts == {"churn": 2000, "fraud": 600}
    joined = {labels["model"]: value for labels, value in scraped["driftline_joined_total"]}
    assert joined == {"churn": 2000, "fraud": 0}
    assert scraped["driftline_dead_letters_total"] == [({}, 3.0)]
    assert ({"model": "churn", "kind": "data_drift", "severity": "critical"}, 1.0) in scraped["driftline_alerts_open"]
    churn_metrics = {
        labels["metric"]: value for labels, value in scraped["driftline_model_metric"] if labels["model"] == "churn"
    }
    assert churn_metrics["accuracy"] == first.models["churn"].summary(0)["accuracy"]
    assert not [labels for labels, _ in scraped["driftline_model_metric"] if labels["model"] == "fraud"]
    drift = {(labels["model"], labels["feature"]): value for labels, value in scraped["driftline_feature_drift_score"]}
    assert drift[("churn", "x")] >= 1.0  # past its threshold
    assert ({"topic": "t.predictions", "partition": "0"}, 7.0) in scraped["driftline_consumer_lag"]
    assert ({}, 1.0) in scraped["driftline_flush_seconds_count"]
    assert ({}, 1.0) in scraped["driftline_checkpoint_seconds_count"]
    status = {labels["model"]: value for labels, value in scraped["driftline_model_status"]}
    assert status == {"churn": 2.0, "fraud": 0.0}

    del pipeline.tasks[0]  # a rebalance moved partition 0 away: its model is no longer this worker's to report
    after = _scrape(metrics)
    assert [labels["model"] for labels, _ in after["driftline_predictions_total"]] == ["fraud"]
    assert not [labels for labels, _ in after.get("driftline_alerts_open", []) if labels["model"] == "churn"]


def test_every_exported_family_is_declared() -> None:
    task = TaskState(0, SETTINGS)
    _drifting_model(task, "churn", 2000, labels=True)
    metrics = WorkerMetrics(_pipeline(task), lambda: {("t", 0): 1}, DriftCap(10, 100))
    metrics.observe("flush", 0.001)
    families = [
        f for f in text_string_to_metric_families(metrics.exposition().decode()) if f.name.startswith("driftline_")
    ]
    exported = {f.name + "_total" if f.type == "counter" else f.name for f in families}
    assert exported == set(METRIC_NAMES)


def test_drift_scores_are_capped_per_model_and_per_worker() -> None:
    task = TaskState(0, SETTINGS)
    for model in ("a", "b", "c"):
        _drifting_model(task, model, 1800, labels=False)
    metrics = WorkerMetrics(_pipeline(task), dict, DriftCap(per_model=2, total=4))
    scraped = _scrape(metrics)
    series = [(labels["model"], labels["feature"]) for labels, _ in scraped["driftline_feature_drift_score"]]
    assert len(series) == 4
    assert all(sum(1 for m, _ in series if m == model) <= 2 for model in ("a", "b", "c"))
    assert {f for _, f in series} >= {"x"}  # the drifting feature outranks the others
    scores = [value for _, value in scraped["driftline_feature_drift_score"]]
    assert scores == sorted(scores, reverse=True)
    assert scraped["driftline_feature_drift_series_omitted"] == [({}, 9 - 4)]  # 3 models x 3 features, 4 shown
