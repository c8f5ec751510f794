"""All the detectors of one model, fed by its predictions and joined outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Collection, Mapping

from detectors.alerts import Alert, AlertBook, AlertKey, Evidence
from detectors.concept_drift import ConceptDriftMonitor
from detectors.feature_monitor import FeatureMonitor, FeatureValue, NewFeature
from detectors.missing_rate import MissingRateMonitor
from detectors.performance import infer_task
from detectors.performance_suite import PerformanceSuite
from detectors.reference import NumericProfile
from detectors.windowed_tests import WindowedDriftMonitor

__all__ = ["FeatureMonitor", "ModelMonitor", "MonitorConfig"]


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


class _AnyOf:
    """Detectors that share one alert: it holds while any holds, with the first holding one's evidence."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[WindowedDriftMonitor]) -> None:
        self.parts = parts

    @property
    def active(self) -> bool:
        return any(part.active for part in self.parts)

    def evidence(self) -> Evidence:
        return next((part for part in self.parts if part.active), self.parts[0]).evidence()


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
    [(1540, 'data_drift', 'x')]
    """

    model_id: str
    config: MonitorConfig = field(default_factory=MonitorConfig)
    features: dict[str, FeatureMonitor] = field(default_factory=dict)
    overflow_feature_values: int = 0  # values of features beyond max_features, ignored
    score: WindowedDriftMonitor | None = None
    classes: WindowedDriftMonitor | None = None  # the mix of predicted classes (classification)
    predictions: int = 0
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
                self._add_feature(name, value, ts)
        for name, monitor in self.features.items():
            monitor.observe(features.get(name), ts)
        if score is not None:
            if self.score is None:
                self.score = self._windowed(None, True, "prediction_drift", label="score")
            if self.score is not None:
                self.score.update(score, ts)
        if prediction is not None and (self.config.task or infer_task(prediction)) == "classification":
            if self.classes is None:
                self.classes = self._windowed(None, False, "prediction_drift", label="predicted class")
            if self.classes is not None:
                self.classes.update(prediction, ts)
        self.predictions += 1

    def observe_outcome(self, prediction: Any, label: Any, ts: float, score: float | None = None) -> None:
        """Feed one prediction joined with its true label."""
        if self.performance is None:
            cfg = self.config
            self.performance = PerformanceSuite.create(cfg.task or infer_task(prediction), cfg)
        self.performance.observe_outcome(prediction, label, score, ts)

    def alerts(self, now: float, suppress: Collection[AlertKey] = ()) -> list[Alert]:
        """Alert transitions (firing or resolved) since the last call.

        Keys in ``suppress`` do not open an episode (a segment's alert while the
        whole model already has the same one open); an open episode carries on.
        """
        out: list[Alert] = []
        watched = set()
        for key, detector in self._detectors():
            watched.add(key)
            if key in suppress and key not in self.book.open:
                continue
            if detector.active or key in self.book.open:
                evidence = detector.evidence()
                if key[0] == "data_drift":
                    evidence = replace(evidence, top_features=self.top_drifting())
                out += self.book.observe(evidence, detector.active, self.model_version, now, key)
        for key in [key for key in self.book.open if key not in watched]:  # no longer monitored
            out += self.book.observe(self.book.open[key].evidence, False, self.model_version, now, key)
        return out

    def holding(self) -> list[AlertKey]:
        """The keys whose detectors hold their condition now, alerted or not."""
        return [key for key, detector in self._detectors() if detector.active]

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests whose reference just completed; returns how many.

        Each takes tens of milliseconds, so a caller spreads them between batches
        instead of stalling when many features finish their reference together.
        """
        done = 0
        monitors = [f.windowed for f in self.features.values()] + [self.score, self.classes]
        for windowed in monitors:
            if done >= limit:
                break
            if windowed is not None and windowed.needs_calibration:
                windowed.calibrate_now()
                done += 1
        return done

    def top_drifting(self, limit: int = 5) -> tuple[tuple[str, float], ...]:
        """The features closest to (or past) a drift alert, with their scores (1 or more: significant)."""
        scores = sorted(((f.drift_score, name) for name, f in self.features.items()), reverse=True)
        return tuple((name, round(score, 3)) for score, name in scores[:limit] if score > 0)

    def reconfigure(self, config: MonitorConfig) -> None:
        """Apply a new configuration to the running detectors.

        Thresholds change at once; sizes (baseline, windows) apply to detectors
        created from now on; a feature no longer monitored is dropped (its open
        alerts resolve); a new task restarts performance tracking, and another
        concept-drift detector restarts concept-drift detection.
        """
        self.config = config
        self.removed_features += [name for name in self.features if not config.monitors(name)]
        self.features = {name: f for name, f in self.features.items() if config.monitors(name)}
        for monitor in self.features.values():
            monitor.missing.set_min_jump(config.missing_rate_min_jump)
        for windowed in [f.windowed for f in self.features.values()] + [self.score, self.classes]:
            if windowed is not None:
                windowed.set_budget(config.budget_events)
        self.book.cooldown_s = config.alert_cooldown_s
        if self.performance is not None and config.task not in (None, self.performance.task):
            self.performance = None
        elif self.performance is not None:
            self.performance.realized.min_drop = config.performance_min_drop
            concept = self.performance.concept
            if concept.method != config.concept_drift_detector:  # another detector starts afresh
                self.performance.concept = ConceptDriftMonitor(
                    concept.binary, config.baseline_events, method=config.concept_drift_detector
                )

    def _detectors(self) -> list[tuple[AlertKey, Any]]:
        found: list[tuple[AlertKey, Any]] = []
        for monitor in self.features.values():
            found += monitor.detectors()
        parts = [m for m in (self.score, self.classes) if m is not None]
        if parts:  # one prediction_drift episode: the score and the class mix usually move together
            found.append((("prediction_drift", None, "prediction"), _AnyOf(parts)))
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
        for name, profile in profiles.items():
            if name not in self.features and self.config.monitors(name):  # expected, not seen yet
                self._add_feature(name, 0.0 if isinstance(profile, NumericProfile) else "", None)
        for name, monitor in self.features.items():
            if name in profiles:
                monitor.windowed = self._windowed(name, monitor.numeric)
                monitor.out_of_range = None  # rebuilt against the new range
                monitor.missing.expected_rate = profiles[name].missing_rate

    def _windowed(
        self, name: str | None, numeric: bool, kind: str = "data_drift", label: str | None = None
    ) -> WindowedDriftMonitor | None:
        profile = self.reference.get(name) if name is not None else None
        if profile is None and not self.config.reference_events:
            return None
        return WindowedDriftMonitor(
            name, profile=profile, kind=kind, n_features=max(20, len(self.features) + 3), window=self.config.window,
            budget_events=self.config.budget_events, label=label,
            reference_size=self.config.reference_events or 1000, dtype=None if numeric else "categorical",
        )

    def _after_restore(self) -> None:
        self.reference = {}

    def _add_feature(self, name: str, value: FeatureValue, ts: float | None) -> None:
        """Start monitoring a feature: on its first value (``ts``), or expected by the reference (``None``)."""
        if len(self.features) >= self.config.max_features:
            self.overflow_feature_values += 1
            return
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cfg = self.config
        missing = MissingRateMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump)
        what = "text instead of numbers" if numeric else "numbers instead of categories"
        type_changes = MissingRateMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump,
                                          detector="type_change", what=what)
        schema_known = bool(self.reference) or self.predictions >= cfg.baseline_events
        # The schema rests on the reference's rows, or on every prediction so far.
        schema_events = max((profile.n for profile in self.reference.values()), default=self.predictions)
        new = NewFeature(name, self.predictions, ts, max(schema_events, 1), cfg.baseline_events) \
            if ts is not None and schema_known else None
        self.features[name] = FeatureMonitor(
            name, numeric, missing, self._windowed(name, numeric), type_changes=type_changes, new=new
        )

    def status(self) -> str:
        return self.book.status()


