"""Everything measured from joined labels, plus the label-free estimate, for one model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detectors.alerts import AlertKey
from detectors.cbpe import ConfidenceBasedEstimator
from detectors.concept_drift import ConceptDriftMonitor
from detectors.metrics import ClassificationMetrics, RegressionMetrics
from detectors.performance import CLASSIFICATION, PerformanceMonitor, same_class

if TYPE_CHECKING:
    from detectors.model_monitor import MonitorConfig


@dataclass
class PerformanceSuite:
    """Realized metric and its alert, concept drift, the full metric set, and CBPE.

    ``score`` is the model's probability for its predicted class, unless the
    model's configuration names a ``positive_class``: then it is the
    probability of that class (binary models), and log loss and Brier are kept.
    CBPE estimates accuracy before labels arrive from the score alone.

    Examples
    --------
    >>> import random
    >>> from detectors.model_monitor import MonitorConfig
    >>> rng = random.Random(4)
    >>> suite = PerformanceSuite.create("classification", MonitorConfig())
    >>> for i in range(3000):
    ...     p = rng.uniform(0.6, 1.0)
    ...     suite.observe_prediction("yes", p, float(i))
    ...     suite.observe_outcome("yes", "yes" if rng.random() < p else "no", p, float(i))
    >>> sorted(k for k in suite.summary() if "total" not in k)[:4]
    ['accuracy', 'accuracy_baseline', 'estimated_accuracy', 'f1']
    """

    task: str
    positive_class: str | int | bool | None
    realized: PerformanceMonitor
    concept: ConceptDriftMonitor
    metrics: ClassificationMetrics | RegressionMetrics
    cbpe: ConfidenceBasedEstimator | None

    @classmethod
    def create(cls, task: str, config: MonitorConfig) -> PerformanceSuite:
        classification = task == CLASSIFICATION
        positive = config.positive_class
        return cls(
            task, positive,
            PerformanceMonitor(task, config.baseline_events, config.metric_window, config.performance_min_drop),
            ConceptDriftMonitor(classification, config.baseline_events, method=config.concept_drift_detector),
            ClassificationMetrics(positive=1 if positive is None else positive, window=config.metric_window)
            if classification else RegressionMetrics(window=config.metric_window),
            ConfidenceBasedEstimator(positive=True, reference_size=config.baseline_events * 2,
                                     window=config.metric_window) if classification else None,
        )

    @property
    def n(self) -> int:
        return self.realized.n

    def _right_probability(self, prediction: Any, score: float) -> float:
        """The probability that the prediction is right, from the score."""
        if self.positive_class is None or same_class(prediction, self.positive_class):
            return score
        return 1.0 - score

    def observe_prediction(self, prediction: Any, score: float | None, ts: float) -> None:
        if self.cbpe is not None and score is not None:
            self.cbpe.observe_prediction(True, self._right_probability(prediction, score), ts)

    def observe_outcome(self, prediction: Any, label: Any, score: float | None, ts: float) -> None:
        try:
            loss = self.realized.loss(prediction, label)
        except (TypeError, ValueError):
            return  # a regression label that is not a finite number: joined, not scored
        self.realized.update(prediction, label, ts)
        self.concept.update(loss, ts)
        if isinstance(self.metrics, ClassificationMetrics):
            self.metrics.update(prediction, label, score if self.positive_class is not None else None)
        else:
            self.metrics.update(float(prediction), float(label))
        if self.cbpe is not None and score is not None:
            self.cbpe.observe_outcome(True, loss == 0.0, self._right_probability(prediction, score))

    def detectors(self) -> list[tuple[AlertKey, Any]]:
        found: list[tuple[AlertKey, Any]] = [
            (("performance", None, f"rolling_{self.realized.metric_name}"), self.realized),
            (("concept_drift", None, self.concept.detector_name), self.concept),
        ]
        if self.cbpe is not None:
            found.append((("performance", None, "cbpe"), self.cbpe))
        return found

    def summary(self) -> dict[str, str | float]:
        """Fields for the model's Redis hash."""
        realized, name = self.realized, self.realized.metric_name
        fields: dict[str, str | float] = {"task": self.task, "metric": name}
        if realized.n:
            fields |= {name: round(realized.rolling, 6), f"{name}_total": round(realized.cumulative, 6),
                       f"{name}_baseline": round(realized.baseline, 6)}
        fields |= {k: round(v, 6) for k, v in self.metrics.snapshot().items() if k not in fields}
        if self.cbpe is not None and self.cbpe.calibrated:
            fields["estimated_accuracy"] = round(self.cbpe.estimated_accuracy, 6)
        return fields
