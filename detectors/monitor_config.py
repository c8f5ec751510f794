"""The thresholds and sizes one model's detectors share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FeatureBudget", "MonitorConfig"]


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Thresholds and sizes shared by one model's detectors.

    >>> MonitorConfig().baseline_events
    500
    """

    baseline_events: int = 500
    metric_window: int = 1000
    performance_min_drop: float = 0.10
    missing_rate_min_jump: float = 0.10
    max_features: int = 500
    task: str | None = None  # None: inferred from the first prediction
    only_features: tuple[str, ...] | None = None  # None: every feature
    ignore_features: tuple[str, ...] = ()
    positive_class: str | int | bool | None = None  # None: score is P(predicted class)
    reference_events: int = 1000  # values that form each feature's windowed-test reference; 0: off
    alert_cooldown_s: float = 0.0
    budget_events: float = 1e6  # expected events between false alarms, across the model's detectors
    concept_drift_detector: str | None = None  # ddm, eddm, hddm_a or adwin; None: ddm (adwin for regression)
    window: int = 500  # values per windowed test

    def monitors(self, feature: str) -> bool:
        """Whether ``feature`` is watched under this configuration.

        >>> MonitorConfig(ignore_features=("id",)).monitors("id")
        False
        """
        if feature in self.ignore_features:
            return False
        return self.only_features is None or feature in self.only_features


@dataclass
class FeatureBudget:
    """Features that may still start being monitored, shared by the models of one partition: a memory bound.

    >>> budget = FeatureBudget(2)
    >>> budget.take(), budget.take(), budget.take(), budget.refused
    (True, True, False, 1)
    """

    remaining: int
    refused: int = 0

    def take(self) -> bool:
        """Claim one feature; False (and counted) when the budget is spent."""
        if self.remaining <= 0:
            self.refused += 1
            return False
        self.remaining -= 1
        return True
