"""PerformanceSuite: the batch entry points of a model's label detectors, against one event at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Change
from detectors.model_monitor import MonitorConfig
from detectors.performance import CLASSIFICATION, REGRESSION
from detectors.performance_suite import PerformanceSuite
from streams.codec import decode, encode
from tests.detectors.batching import assert_split_invariant, cuts, times

POSITIVE_SPELLINGS = [1, "1", True, 1.0, "true"]
NEGATIVE_SPELLINGS = [0, "0", False, 0.0, "false"]


@dataclass
class Events:
    """A model's events in event-time order: predictions (``outcome`` False) and joined pairs."""

    outcome: np.ndarray
    predictions: list[Any]
    labels: list[Any]
    scores: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def levels(rng: np.random.Generator, n: int, good: tuple[float, float], bad: tuple[float, float]) -> np.ndarray:
    """A level per event: segments that alternate between a good level and a bad one, good first."""
    edges = np.sort(rng.integers(0, n + 1, size=rng.integers(1, 5)))
    kinds = [good if i % 2 == 0 else bad for i in range(len(edges) + 1)]
    return np.array([rng.uniform(*kind) for kind in kinds])[np.searchsorted(edges, np.arange(n), side="right")]


def events(
    task: str, positive: bool, scored: float, n: int, rng: np.random.Generator, accuracy: np.ndarray | None = None
) -> Events:
    """Events whose accuracy (or error size) and confidence move together in segments (or ``accuracy``'s)."""
    outcome = rng.random(n) < 0.5
    scores = np.full(n, np.nan)
    if task == REGRESSION:
        truth = rng.normal(10.0, 3.0, n)
        guess = truth + rng.normal(0.0, levels(rng, n, (0.4, 0.6), (1.0, 3.0)))
        predictions: list[Any] = guess.tolist()
        labels: list[Any] = truth.tolist()
        for i in np.flatnonzero(rng.random(n) < 0.03).tolist():
            labels[i] = ["x", None, math.inf, "nan"][i % 4]  # joined, never scored
        return Events(outcome, predictions, labels, scores, times(n, rng))
    accuracy = levels(rng, n, (0.9, 0.97), (0.5, 0.8)) if accuracy is None else accuracy
    confidence = np.clip(accuracy + rng.normal(0.0, 0.05, n), 0.5, 1.0)
    right = rng.random(n) < accuracy
    says_positive = rng.random(n) < 0.5
    spell = rng.integers(0, len(POSITIVE_SPELLINGS), size=(2, n))
    predictions, labels = [], []
    for i in range(n):
        mine, other = (POSITIVE_SPELLINGS, NEGATIVE_SPELLINGS)
        if not says_positive[i]:
            mine, other = other, mine
        predictions.append(mine[spell[0, i]])
        labels.append((mine if right[i] else other)[spell[1, i]])
    # the score is P(predicted class), or P(positive) when the model names a positive class
    score = np.where(says_positive | (not positive), confidence, 1.0 - confidence)
    keep = rng.random(n) < scored
    scores[keep] = score[keep]
    return Events(outcome, predictions, labels, scores, times(n, rng))


def feed(stream: Events) -> Any:
    """Feed ``stream[part]`` in runs of predictions and of pairs; the changes at indices into ``part``."""

    def run(suite: PerformanceSuite, part: slice) -> list[Change]:
        found: list[Change] = []
        i = part.start
        while i < part.stop:
            j = i
            while j < part.stop and stream.outcome[j] == stream.outcome[i]:
                j += 1
            s = slice(i, j)
            if stream.outcome[i]:
                keyed = suite.observe_outcomes(stream.predictions[s], stream.labels[s], stream.scores[s], stream.ts[s])
            else:
                keyed = suite.observe_predictions(stream.predictions[s], stream.scores[s], stream.ts[s])
            for key, change in keyed:
                e = change.evidence
                assert key == (e.kind, e.feature, e.detector)
                assert 0 <= change.index < j - i
                found.append(Change(i - part.start + change.index, change.active, e))
            i = j
        return found

    return run


def config(positive: bool, method: str | None = None) -> MonitorConfig:
    return MonitorConfig(
        baseline_events=50,
        metric_window=100,
        performance_min_drop=0.15,
        positive_class=1 if positive else None,
        concept_drift_detector=method,
    )


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    seed=st.integers(0, 10_000),
    n=st.integers(1, 4000),
    setup=st.sampled_from([(CLASSIFICATION, False), (CLASSIFICATION, True), (REGRESSION, False)]),
    scored=st.sampled_from([0.0, 0.7, 1.0]),
    method=st.sampled_from([None, "hddm_a", "adwin"]),
)
def test_any_split_gives_the_changes_and_state_of_one_event_at_a_time(
    data: st.DataObject,
    seed: int,
    n: int,
    setup: tuple[str, bool],
    scored: float,
    method: str | None,
) -> None:
    task, positive = setup
    stream = events(task, positive, scored, n, np.random.default_rng(seed))
    assert_split_invariant(
        lambda: PerformanceSuite.create(task, config(positive, method)), feed(stream), n, data.draw(cuts(n))
    )


def test_the_split_streams_raise_and_clear_every_condition() -> None:
    """Accuracy drops, concept drift and CBPE all flip both ways in the streams above (real changes to compare)."""
    seen = set()
    for seed in range(15):
        for task, positive in [(CLASSIFICATION, False), (CLASSIFICATION, True), (REGRESSION, False)]:
            stream = events(task, positive, 1.0, 4000, np.random.default_rng(seed))
            suite = PerformanceSuite.create(task, config(positive))
            seen |= {(task, c.evidence.detector, c.active) for c in feed(stream)(suite, slice(0, 4000))}
    want = {
        (task, detector, active)
        for active in (True, False)
        for task, detector in [
            (CLASSIFICATION, "rolling_accuracy"),
            (CLASSIFICATION, "ddm"),
            (CLASSIFICATION, "cbpe"),
            (REGRESSION, "rolling_mae"),
            (REGRESSION, "adwin"),
        ]
    }
    assert seen == want


@pytest.mark.parametrize("task,positive", [(CLASSIFICATION, False), (CLASSIFICATION, True), (REGRESSION, False)])
def test_batches_give_the_onsets_that_polling_one_event_at_a_time_sees(task: str, positive: bool) -> None:
    stream = events(task, positive, 0.8, 3000, np.random.default_rng(21))
    one = PerformanceSuite.create(task, config(positive))
    polled = []
    held = {key: False for key, _ in one.detectors()}
    for i in range(len(stream)):
        score = None if math.isnan(stream.scores[i]) else float(stream.scores[i])
        if stream.outcome[i]:
            one.observe_outcome(stream.predictions[i], stream.labels[i], score, float(stream.ts[i]))
        else:
            one.observe_prediction(stream.predictions[i], score, float(stream.ts[i]))
        for key, detector in one.detectors():
            if detector.active != held[key]:
                held[key] = detector.active
                polled.append((i, key[2], detector.active, detector.evidence()))
    batch = PerformanceSuite.create(task, config(positive))
    changes = feed(stream)(batch, slice(0, len(stream)))
    assert [(c.index, c.evidence.detector, c.active, c.evidence) for c in changes] == polled and polled
    assert encode(batch) == encode(one)
    assert batch.summary() == one.summary()


def test_a_regression_pair_that_is_not_a_number_is_joined_but_not_scored() -> None:
    suite = PerformanceSuite.create(REGRESSION, MonitorConfig(baseline_events=50, metric_window=100))
    rng = np.random.default_rng(2)
    truth = rng.normal(0.0, 1.0, 400)
    guess = (truth + rng.normal(0.0, np.where(np.arange(400) < 200, 0.1, 5.0))).tolist()
    labels: list[Any] = truth.tolist()
    labels[::3] = ["x"] * len(labels[::3])
    changes = suite.observe_outcomes(guess, labels, np.full(400, np.nan), np.arange(400.0))
    assert suite.n == suite.regression.n_total == 400 - len(labels[::3])  # type: ignore[union-attr]
    assert changes and all(c.index % 3 for _, c in changes)  # indices into the batch, never a skipped pair
    assert all(c.evidence.window_end == float(c.index) for _, c in changes)


def test_classes_compare_across_json_types() -> None:
    suite = PerformanceSuite.create(CLASSIFICATION, MonitorConfig(positive_class="true"))
    suite.observe_outcomes(
        [1, "1", True, 0.0, "false", 1],
        ["true", True, 1.0, "0", False, 0],
        np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.6]),
        np.arange(6.0),
    )
    summary = suite.summary()
    assert summary["accuracy"] == pytest.approx(5 / 6) and summary["precision"] == pytest.approx(3 / 4)
    assert len(suite.metrics.classes) == 2  # type: ignore[union-attr]
    assert suite.metrics.snapshot()["brier"] == pytest.approx(  # scores are P("true")
        (0.01 + 0.04 + 0.09 + 0.04 + 0.01 + 0.36) / 6
    )


def mid_stream(task: str, positive: bool, n: int, seed: int) -> tuple[PerformanceSuite, PerformanceSuite, Events]:
    stream = events(task, positive, 1.0, n, np.random.default_rng(seed))
    straight = PerformanceSuite.create(task, config(positive))
    feed(stream)(straight, slice(0, n))
    return straight, PerformanceSuite.create(task, config(positive)), stream


@pytest.mark.parametrize("task,positive", [(CLASSIFICATION, True), (REGRESSION, False)])
def test_a_codec_round_trip_mid_stream_continues_exactly(task: str, positive: bool) -> None:
    straight, interrupted, stream = mid_stream(task, positive, 3000, 4)
    feed(stream)(interrupted, slice(0, 1333))
    blob = encode(interrupted)
    restored = decode(blob, PerformanceSuite)
    assert encode(restored) == blob
    feed(stream)(restored, slice(1333, 3000))
    assert encode(restored.realized) == encode(straight.realized)
    assert encode(restored.metrics) == encode(straight.metrics)
    assert encode(restored.cbpe) == encode(straight.cbpe)
    if task == CLASSIFICATION:  # river's DDM restores exactly
        assert encode(restored) == encode(straight) and restored.summary() == straight.summary()
    else:  # ADWIN restarts from its last 512 inputs (ReplayableADWIN), so its later detections may differ
        assert restored.concept.baseline == straight.concept.baseline
        assert restored.concept.adwin.count == straight.concept.adwin.count  # type: ignore[union-attr]


def test_a_codec_round_trip_with_concept_drift_active_continues_exactly() -> None:
    n = 4000
    drop = np.where(np.arange(n) < 1500, 0.95, 0.6)
    stream = events(CLASSIFICATION, False, 1.0, n, np.random.default_rng(8), accuracy=drop)
    straight = PerformanceSuite.create(CLASSIFICATION, config(False))
    want = feed(stream)(straight, slice(0, n))
    onset = next(c.index for c in want if c.evidence.kind == "concept_drift" and c.active)
    cut = onset + 10
    interrupted = PerformanceSuite.create(CLASSIFICATION, config(False))
    got = feed(stream)(interrupted, slice(0, cut))
    assert interrupted.concept.active
    restored = decode(encode(interrupted), PerformanceSuite)
    got += [Change(c.index + cut, c.active, c.evidence) for c in feed(stream)(restored, slice(cut, n))]
    assert got == want
    assert encode(restored) == encode(straight)


def test_metrics_are_one_of_two_fields() -> None:
    classification = PerformanceSuite.create(CLASSIFICATION, MonitorConfig())
    regression = PerformanceSuite.create(REGRESSION, MonitorConfig())
    assert classification.metrics is classification.classification and classification.regression is None
    assert regression.metrics is regression.regression and regression.classification is None
    assert regression.cbpe is None and regression.observe_predictions([1.0], np.array([0.5]), np.array([0.0])) == []
