"""The exported API is a promise: changing it must be a deliberate edit of this test."""

from __future__ import annotations

import detectors
import streams
from streams import errors


def test_streams_exports() -> None:
    assert sorted(streams.__all__) == sorted(
        [
            "CheckpointError",
            "ConfigurationError",
            "DriftlineError",
            "EmbeddedServerError",
            "InvalidEvent",
            "OutcomeEvent",
            "PredictionEvent",
            "RedisKeys",
            "Settings",
            "__version__",
            "decode_message",
            "partition_for",
        ]
    )
    assert all(hasattr(streams, name) for name in streams.__all__)


def test_detectors_exports() -> None:
    assert sorted(detectors.__all__) == sorted(
        [
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
    )
    assert all(hasattr(detectors, name) for name in detectors.__all__)


def test_one_exception_tree() -> None:
    """Every exception driftline raises derives from DriftlineError, as errors.py draws it."""
    assert issubclass(errors.InvalidEvent, errors.DriftlineError)
    assert issubclass(errors.InvalidEvent, ValueError)
    assert issubclass(errors.ConfigurationError, errors.DriftlineError)
    assert issubclass(errors.EmbeddedServerError, errors.ConfigurationError)
    assert issubclass(errors.CheckpointError, errors.DriftlineError)
    drawn = errors.__doc__ or ""
    for name in ("DriftlineError", "InvalidEvent", "ConfigurationError", "EmbeddedServerError", "CheckpointError"):
        assert name in drawn and getattr(streams, name) is getattr(errors, name)


def test_detectors_stay_pure() -> None:
    """detectors/ is computation only: no Kafka, Redis or Faust."""
    import pathlib
    import re

    forbidden = re.compile(r"^\s*(import|from)\s+(kafka|aiokafka|faust|redis|streams|msgspec|orjson|pydantic)\b", re.M)
    for path in pathlib.Path(detectors.__file__).parent.glob("*.py"):
        assert not forbidden.search(path.read_text()), path
