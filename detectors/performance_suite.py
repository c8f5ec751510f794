"""Everything measured from joined labels, plus the label-free estimate, for one model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.alerts import AlertKey
from detectors.base import Change, as_times
from detectors.cbpe import ConfidenceBasedEstimator
from detectors.concept_drift import ConceptDriftMonitor
from detectors.metrics import ClassificationMetrics, RegressionMetrics
from detectors.monitor_config import MonitorConfig
from detectors.performance import CLASSIFICATION, Label, PerformanceMonitor, canonical_classes, numeric_labels

__all__ = ["CBPE_KEY", "PerformanceSuite"]

CBPE_KEY: AlertKey = ("performance", None, "cbpe")


@dataclass
class PerformanceSuite:
    """Realized metric and its alert, concept drift, the full metric set, and CBPE.

    ``score`` is the model's probability for its predicted class, unless the
    model's configuration names a ``positive_class``: then it is the
    probability of that class (binary models), and log loss and Brier are kept.
    CBPE estimates accuracy before labels arrive from the score alone.
    :meth:`observe_predictions` and :meth:`observe_outcomes` take a batch as
    columns and return the changes of every detector, keyed as
    :meth:`detectors` keys them, in the order of the batch.

    Examples
    --------
    >>> import random
    >>> from detectors.model_monitor import MonitorConfig
    >>> rng = random.Random(4)
    >>> suite = PerformanceSuite.create("classification", MonitorConfig())
    >>> p = np.array([rng.uniform(0.6, 1.0) if i < 3000 else rng.uniform(0.5, 0.7) for i in range(5000)])
    >>> labels = ["yes" if rng.random() < q else "no" for q in p]
    >>> ts, found = np.arange(5000.0), []
    >>> for a in range(0, 5000, 250):  # predictions, then the labels that joined them
    ...     part = slice(a, a + 250)
    ...     changes = suite.observe_predictions(["yes"] * 250, p[part], ts[part])
    ...     changes += suite.observe_outcomes(["yes"] * 250, labels[part], p[part], ts[part])
    ...     found += [(a + c.index, key[2]) for key, c in changes if c.active]
    >>> found
    [(3247, 'cbpe'), (3333, 'ddm'), (3615, 'rolling_accuracy')]
    >>> sorted(k for k in suite.summary() if "total" not in k)[:4]
    ['accuracy', 'accuracy_baseline', 'estimated_accuracy', 'f1']
    """

    task: str
    positive_class: str | int | bool | None
    realized: PerformanceMonitor
    concept: ConceptDriftMonitor
    classification: ClassificationMetrics | None  # the metric set: one of these two, by task
    regression: RegressionMetrics | None
    cbpe: ConfidenceBasedEstimator | None

    @classmethod
    def create(cls, task: str, config: MonitorConfig) -> PerformanceSuite:
        classification = task == CLASSIFICATION
        positive = config.positive_class
        return cls(
            task,
            positive,
            PerformanceMonitor(task, config.baseline_events, config.metric_window, config.performance_min_drop),
            ConceptDriftMonitor(classification, config.baseline_events, method=config.concept_drift_detector),
            ClassificationMetrics(positive=1 if positive is None else positive, window=config.metric_window)
            if classification
            else None,
            None if classification else RegressionMetrics(window=config.metric_window),
            ConfidenceBasedEstimator(
                positive=True, reference_size=config.baseline_events * 2, window=config.metric_window
            )
            if classification
            else None,
        )

    @property
    def n(self) -> int:
        return self.realized.n

    @property
    def metrics(self) -> ClassificationMetrics | RegressionMetrics:
        """The full metric set of the task."""
        found = self.classification if self.classification is not None else self.regression
        assert found is not None
        return found

    def _right_probability(self, predictions: Sequence[Label | None], scores: np.ndarray) -> np.ndarray:
        """The probability that each prediction is right, from its score (NaN: none)."""
        if self.positive_class is None or not len(scores):
            return scores
        positive = canonical_classes([self.positive_class])[0]
        said = np.array([name == positive for name in canonical_classes(predictions)], dtype=bool)
        return np.where(said, scores, 1.0 - scores)

    # -- batches ---------------------------------------------------------------------------

    def observe_predictions(
        self,
        predictions: Sequence[Label | None],  # None: the event carries no prediction
        scores: np.ndarray,
        ts: np.ndarray,
    ) -> list[tuple[AlertKey, Change]]:
        """Feed predictions in order, with their scores (NaN where an event had none); return CBPE's changes."""
        if self.cbpe is None:
            return []
        scores = np.asarray(scores, dtype=np.float64)
        right = self._right_probability(predictions, scores)
        return [(CBPE_KEY, c) for c in self.cbpe.observe_scores(right, True, ts)]

    def observe_outcomes(
        self,
        predictions: Sequence[Label],
        labels: Sequence[Label],
        scores: np.ndarray,
        ts: np.ndarray,
    ) -> list[tuple[AlertKey, Change]]:
        """Feed joined pairs in event-time order (``ts``: each pair's event time); return every detector's changes.

        A regression pair whose prediction or label is not a finite number is
        joined but not scored. Changes are in the order of the batch.
        """
        scores = np.asarray(scores, dtype=np.float64)
        times = as_times(ts, len(scores))
        rows: np.ndarray | None = None
        if self.task == CLASSIFICATION:
            guesses, truths = canonical_classes(predictions), canonical_classes(labels)
            losses = np.array([g != t for g, t in zip(guesses, truths, strict=True)], dtype=np.float64)
            right = losses == 0.0
        else:
            guessed, real = numeric_labels(predictions), numeric_labels(labels)
            losses = np.abs(guessed - real)
            valid = ~np.isnan(losses)
            if np.count_nonzero(valid) < len(valid):
                rows = np.flatnonzero(valid)
                guessed, real, losses, times = guessed[rows], real[rows], losses[rows], times[rows]
        if not len(losses):
            return []
        found: list[tuple[AlertKey, Change]] = [
            ((("performance", None, f"rolling_{self.realized.metric_name}")), c)
            for c in self.realized.update_many(losses, times)
        ]
        found += [
            (("concept_drift", None, self.concept.detector_name), c) for c in self.concept.update_many(losses, times)
        ]
        if self.classification is not None:
            self.classification.update_many(guesses, truths, scores if self.positive_class is not None else None)
        if self.regression is not None:
            self.regression.update_many(guessed, real)
        if self.cbpe is not None:  # scored pairs only: CBPE's realized accuracy is that of the pairs it estimates
            missing = np.isnan(scores)
            if np.count_nonzero(missing):
                keep = np.flatnonzero(~missing)
                predictions, scores, right = [predictions[i] for i in keep.tolist()], scores[keep], right[keep]
            if len(scores):
                self.cbpe.observe_labelled(self._right_probability(predictions, scores), True, right)
        if len(found) > 1:
            found.sort(key=lambda keyed: keyed[1].index)  # stable: detectors in the order of ``detectors()`` at a tie
        if rows is not None:
            found = [(key, Change(int(rows[c.index]), c.active, c.evidence)) for key, c in found]
        return found

    # -- one event at a time ---------------------------------------------------------------

    def observe_prediction(self, prediction: Label, score: float | None, ts: float) -> None:
        self.observe_predictions([prediction], np.array([math.nan if score is None else score]), np.array([ts]))

    def observe_outcome(self, prediction: Label, label: Label, score: float | None, ts: float) -> None:
        self.observe_outcomes([prediction], [label], np.array([math.nan if score is None else score]), np.array([ts]))

    # -- reading -------------------------------------------------------------------------

    def detectors(self) -> list[tuple[AlertKey, Any]]:
        found: list[tuple[AlertKey, Any]] = [
            (("performance", None, f"rolling_{self.realized.metric_name}"), self.realized),
            (("concept_drift", None, self.concept.detector_name), self.concept),
        ]
        if self.cbpe is not None:
            found.append((CBPE_KEY, self.cbpe))
        return found

    def summary(self) -> dict[str, str | float]:
        """Fields for the model's Redis hash."""
        realized, name = self.realized, self.realized.metric_name
        fields: dict[str, str | float] = {"task": self.task, "metric": name}
        if realized.n:
            fields |= {
                name: round(realized.rolling, 6),
                f"{name}_total": round(realized.cumulative, 6),
                f"{name}_baseline": round(realized.baseline, 6),
            }
        fields |= {k: round(v, 6) for k, v in self.metrics.snapshot().items() if k not in fields}
        if self.cbpe is not None and self.cbpe.calibrated:
            fields["estimated_accuracy"] = round(self.cbpe.estimated_accuracy, 6)
        return fields
