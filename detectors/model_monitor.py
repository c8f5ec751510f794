"""All the detectors of one model, fed by its predictions and joined outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from detectors.alerts import Alert, AlertBook, AlertKey, Evidence
from detectors.feature_drift import FeatureDriftMonitor
from detectors.missing_rate import MissingRateMonitor
from detectors.performance import infer_task
from detectors.performance_suite import PerformanceSuite
from detectors.windowed_tests import WindowedDriftMonitor

FeatureValue = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Thresholds and sizes shared by one model's detectors.

    >>> MonitorConfig().baseline_events
    500
    """

    baseline_events: int = 500
    metric_window: int = 1000
    adwin_delta: float = 0.002
    drift_min_effect: float = 0.25
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

    def monitors(self, feature: str) -> bool:
        """Whether ``feature`` is watched under this configuration.

        >>> MonitorConfig(ignore_features=("id",)).monitors("id")
        False
        """
        if feature in self.ignore_features:
            return False
        return self.only_features is None or feature in self.only_features


@dataclass
class FeatureMonitor:
    """Missing rate for any feature; windowed tests against its reference; ADWIN for a numeric one.

    The two drift detectors make one alert: it holds while either holds, and
    its evidence comes from the windowed tests when they decided.
    """

    name: str
    numeric: bool
    missing: MissingRateMonitor
    drift: FeatureDriftMonitor | None
    windowed: WindowedDriftMonitor | None = None
    type_mismatches: int = 0
    type_changes: MissingRateMonitor | None = None  # the share of values of the other type

    @property
    def active(self) -> bool:
        return bool((self.drift and self.drift.active) or (self.windowed and self.windowed.active))

    def evidence(self) -> Evidence:
        if self.windowed is not None and (self.windowed.active or self.drift is None or not self.drift.active):
            return self.windowed.evidence()
        assert self.drift is not None
        return self.drift.evidence()

    def summary(self) -> dict[str, Any]:
        drift = self.drift
        return {
            "type": "numeric" if self.numeric else "categorical",
            "n": self.missing.n,
            "missing": self.missing.missing,
            "missing_rate": round(self.missing.rate, 6),
            "type_mismatches": self.type_mismatches,
            "drift_detector": "adwin" if drift else None,
            "drift_statistic": round(drift.effect, 6) if drift else None,
            "mean": round(drift.adwin.estimation, 6) if drift and drift.adwin else None,
            "baseline_mean": round(drift.baseline.mean, 6) if drift else None,
            "baseline_std": round(drift.baseline.std, 6) if drift else None,
            **({f"window_{k}": round(v, 6) for k, v in self.windowed.stats.items()} if self.windowed else {}),
        }


@dataclass
class ModelMonitor:
    """Drift, data-quality and performance detectors for one model.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(11)
    >>> monitor = ModelMonitor("churn")
    >>> fired = []
    >>> for i in range(3000):
    ...     x = rng.gauss(0.0 if i < 1500 else 1.0, 1.0)
    ...     monitor.observe_prediction({"x": x, "plan": "pro"}, 0.5, float(i), "v1")
    ...     fired += [(i, a.evidence.kind, a.evidence.feature) for a in monitor.alerts(now=float(i))]
    >>> fired
    [(1598, 'data_drift', 'x')]
    """

    model_id: str
    config: MonitorConfig = field(default_factory=MonitorConfig)
    features: dict[str, FeatureMonitor] = field(default_factory=dict)
    overflow_feature_values: int = 0  # values of features beyond max_features, ignored
    score: FeatureDriftMonitor | None = None
    performance: PerformanceSuite | None = None
    book: AlertBook = field(init=False)
    model_version: str = ""
    removed_features: list[str] = field(default_factory=list)  # dropped by reconfigure, until reported
    reference: dict[str, Any] = field(default_factory=dict)  # uploaded profiles by feature, if any
    segment: dict[str, str] | None = None  # the slice this monitor watches (its alerts carry it); None: the model

    _checkpoint_exclude: ClassVar[tuple[str, ...]] = ("reference",)  # restored from Redis by the owner

    def __post_init__(self) -> None:
        self.book = AlertBook(self.model_id, cooldown_s=self.config.alert_cooldown_s, segment=self.segment)

    def observe_prediction(
        self, features: Mapping[str, FeatureValue], score: float | None, ts: float, model_version: str,
        prediction: Any = None,
    ) -> None:
        """Feed one valid prediction event."""
        self.model_version = model_version
        if self.performance is not None:
            self.performance.observe_prediction(prediction, score, ts)
        for name, value in features.items():
            if name not in self.features and value is not None and self.config.monitors(name):
                self._add_feature(name, value)
        for name, monitor in self.features.items():
            value = features.get(name)
            monitor.missing.update(value is None, ts)
            if value is None:
                continue
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if monitor.type_changes is not None:
                monitor.type_changes.update(numeric != monitor.numeric, ts)
            if numeric != monitor.numeric:
                monitor.type_mismatches += 1
                continue
            if monitor.drift is not None:
                monitor.drift.update(float(value), ts)  # type: ignore[arg-type]
            if monitor.windowed is not None:
                monitor.windowed.update(value, ts)
        if score is not None:
            if self.score is None:
                self.score = self._drift_monitor(None, "prediction_drift")
            self.score.update(score, ts)

    def observe_outcome(self, prediction: Any, label: Any, ts: float, score: float | None = None) -> None:
        """Feed one prediction joined with its true label."""
        if self.performance is None:
            cfg = self.config
            self.performance = PerformanceSuite.create(cfg.task or infer_task(prediction), cfg)
        self.performance.observe_outcome(prediction, label, score, ts)

    def alerts(self, now: float) -> list[Alert]:
        """Alert transitions (firing or resolved) since the last call."""
        out: list[Alert] = []
        watched = set()
        for key, detector in self._detectors():
            watched.add(key)
            if detector.active or key in self.book.open:
                out += self.book.observe(detector.evidence(), detector.active, self.model_version, now, key)
        for key in [key for key in self.book.open if key not in watched]:  # no longer monitored
            out += self.book.observe(self.book.open[key].evidence, False, self.model_version, now, key)
        return out

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests whose reference just completed; returns how many.

        Each takes tens of milliseconds, so a caller spreads them between batches
        instead of stalling when many features finish their reference together.
        """
        done = 0
        for monitor in self.features.values():
            if done >= limit:
                break
            if monitor.windowed is not None and monitor.windowed.needs_calibration:
                monitor.windowed.calibrate_now()
                done += 1
        return done

    def reconfigure(self, config: MonitorConfig) -> None:
        """Apply a new configuration to the running detectors.

        Thresholds change at once; sizes (baseline, windows) apply to detectors
        created from now on; a feature no longer monitored is dropped (its open
        alerts resolve); a new task restarts performance tracking.
        """
        self.config = config
        self.removed_features += [name for name in self.features if not config.monitors(name)]
        self.features = {name: f for name, f in self.features.items() if config.monitors(name)}
        for monitor in self.features.values():
            monitor.missing.min_jump = config.missing_rate_min_jump
            if monitor.drift is not None:
                monitor.drift.min_effect = config.drift_min_effect
        if self.score is not None:
            self.score.min_effect = config.drift_min_effect
        self.book.cooldown_s = config.alert_cooldown_s
        if self.performance is not None and config.task not in (None, self.performance.task):
            self.performance = None
        elif self.performance is not None:
            self.performance.realized.min_drop = config.performance_min_drop

    def _detectors(self) -> list[tuple[AlertKey, Any]]:
        found: list[tuple[AlertKey, Any]] = []
        for name, monitor in self.features.items():
            found.append((("data_quality", name, "missing_rate"), monitor.missing))
            if monitor.type_changes is not None:
                found.append((("data_quality", name, "type_change"), monitor.type_changes))
            if monitor.drift is not None or monitor.windowed is not None:
                found.append((("data_drift", name, "drift"), monitor))
        if self.score is not None:
            found.append((("prediction_drift", None, "adwin"), self.score))
        if self.performance is not None:
            found += self.performance.detectors()
        return found

    def metric(self) -> tuple[str, float] | None:
        """The rolling performance metric, once labels have joined."""
        if self.performance is None or self.performance.n == 0:
            return None
        return self.performance.realized.metric_name, self.performance.realized.rolling

    def set_reference(self, profiles: dict[str, Any]) -> None:
        """Test each feature against an uploaded reference profile from now on."""
        self.reference = dict(profiles)
        for name, monitor in self.features.items():
            if name in profiles:
                monitor.windowed = self._windowed(name, monitor.numeric)

    def _windowed(self, name: str, numeric: bool) -> WindowedDriftMonitor | None:
        profile = self.reference.get(name)
        if profile is None and not self.config.reference_events:
            return None
        return WindowedDriftMonitor(
            name, profile=profile, kind="data_drift", n_features=max(20, len(self.features) + 1),
            budget_events=self.config.budget_events,
            reference_size=self.config.reference_events or 1000, dtype=None if numeric else "categorical",
        )

    def _after_restore(self) -> None:
        self.reference = {}

    def _add_feature(self, name: str, value: FeatureValue) -> None:
        if len(self.features) >= self.config.max_features:
            self.overflow_feature_values += 1
            return
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cfg = self.config
        missing = MissingRateMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump)
        drift = self._drift_monitor(name, "data_drift") if numeric else None
        what = "text instead of numbers" if numeric else "numbers instead of categories"
        type_changes = MissingRateMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump,
                                          detector="type_change", what=what)
        self.features[name] = FeatureMonitor(
            name, numeric, missing, drift, self._windowed(name, numeric), type_changes=type_changes
        )

    def _drift_monitor(self, name: str | None, kind: str) -> FeatureDriftMonitor:
        cfg = self.config
        return FeatureDriftMonitor(
            name, kind, cfg.baseline_events, cfg.drift_min_effect, delta=cfg.adwin_delta
        )

    def status(self) -> str:
        return self.book.status()


