"""Pure online statistics for driftline: no Kafka, Redis or Faust in here."""

from detectors.adwin import ReplayableADWIN
from detectors.alerts import KINDS, Alert, AlertBook, Evidence, alert_id_for, rfc3339
from detectors.base import Change, Detector, Hysteresis, RingSum
from detectors.columns import PairColumns, PredictionColumns
from detectors.concept_drift import ConceptDriftMonitor
from detectors.feature_monitor import FeatureMonitor
from detectors.missing_rate import MissingRateMonitor, TypeChangeMonitor
from detectors.model_monitor import ModelMonitor
from detectors.monitor_config import MonitorConfig
from detectors.performance import CLASSIFICATION, REGRESSION, PerformanceMonitor, infer_task, same_class
from detectors.windows import RunningMoments, WindowClock

__all__ = [
    "CLASSIFICATION",
    "KINDS",
    "REGRESSION",
    "Alert",
    "AlertBook",
    "Change",
    "ConceptDriftMonitor",
    "Detector",
    "Evidence",
    "FeatureMonitor",
    "Hysteresis",
    "MissingRateMonitor",
    "ModelMonitor",
    "MonitorConfig",
    "PairColumns",
    "PerformanceMonitor",
    "PredictionColumns",
    "ReplayableADWIN",
    "RingSum",
    "RunningMoments",
    "TypeChangeMonitor",
    "WindowClock",
    "alert_id_for",
    "infer_task",
    "rfc3339",
    "same_class",
]
