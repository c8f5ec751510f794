"""Pure online statistics for driftline: no Kafka, Redis or Faust in here."""

from detectors.adwin import ReplayableADWIN
from detectors.alerts import KINDS, Alert, AlertBook, Evidence, alert_id_for, rfc3339
from detectors.concept_drift import ConceptDriftMonitor
from detectors.missing_rate import MissingRateMonitor
from detectors.model_monitor import FeatureMonitor, ModelMonitor, MonitorConfig
from detectors.performance import CLASSIFICATION, REGRESSION, PerformanceMonitor, infer_task, same_class
from detectors.windows import RunningMoments, WindowClock

__all__ = [
    "CLASSIFICATION",
    "KINDS",
    "REGRESSION",
    "Alert",
    "AlertBook",
    "ConceptDriftMonitor",
    "Evidence",
    "FeatureMonitor",
    "MissingRateMonitor",
    "ModelMonitor",
    "MonitorConfig",
    "PerformanceMonitor",
    "ReplayableADWIN",
    "RunningMoments",
    "WindowClock",
    "alert_id_for",
    "infer_task",
    "rfc3339",
    "same_class",
]
