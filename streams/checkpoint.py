"""A safe codec for checkpoints: tagged JSON, compressed. It never unpickles.

Only classes on an explicit allowlist can be rebuilt, and rebuilding one only
sets attributes to decoded data (no constructor, no code from Redis runs).
Detector classes may name fields to leave out (``_checkpoint_exclude``) and
rebuild them after decoding (``_after_restore``).
"""

from __future__ import annotations

import base64
import dataclasses
import math
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
import orjson
from river.drift.binary import DDM, EDDM, HDDMA
from river.stats import Mean, Var

import detectors
from detectors.base import Hysteresis, RingSum
from detectors.windows import Ring
from detectors.missing_rate import TypeChangeMonitor
from detectors.cbpe import ConfidenceBasedEstimator
from detectors.cusum import MeanShiftCusum
from detectors.feature_monitor import NewFeature, RangeMonitor
from detectors.metrics import ClassificationMetrics, RegressionMetrics
from detectors.performance_suite import PerformanceSuite
from detectors.reference import CategoricalProfile, NumericProfile, ProfileBuilder
from detectors.segments import SegmentMonitors
from detectors.windowed_tests import Calibration, WindowedDriftMonitor
from streams import join, state
from streams.errors import CheckpointError

FORMAT_VERSION = 2  # 2: feature drift by windowed tests and CUSUM (ADWIN's FeatureDriftMonitor removed)


def _allowlist() -> dict[str, type]:
    classes: list[type] = [
        detectors.Alert, detectors.AlertBook, detectors.ConceptDriftMonitor, detectors.Evidence,
        detectors.FeatureMonitor, detectors.MissingRateMonitor,
        detectors.ModelMonitor, detectors.MonitorConfig, detectors.PerformanceMonitor,
        detectors.RunningMoments, detectors.WindowClock, Ring,
        detectors.ReplayableADWIN, join.LabelJoin, state.ModelState, DDM, Mean,
        ClassificationMetrics, RegressionMetrics, ConfidenceBasedEstimator, PerformanceSuite,
        WindowedDriftMonitor, Calibration, ProfileBuilder, NumericProfile, CategoricalProfile,
        SegmentMonitors, MeanShiftCusum, RangeMonitor, NewFeature, EDDM, HDDMA, Var,
        RingSum, Hysteresis, TypeChangeMonitor,
    ]
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}


ALLOWED = _allowlist()
_NAMES = {cls: name for name, cls in ALLOWED.items()}


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` to compressed bytes."""
    return zlib.compress(orjson.dumps({"format": FORMAT_VERSION, "body": encode(obj)}), 1)


def loads(blob: bytes) -> Any:
    """Decode bytes made by :func:`dumps`."""
    try:
        doc = orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise CheckpointError("checkpoint of an unknown format")
    return decode(doc["body"])


def encode(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__f": repr(obj)}
    if isinstance(obj, list):
        return [encode(x) for x in obj]
    if isinstance(obj, tuple):
        return {"__t": [encode(x) for x in obj]}
    if isinstance(obj, dict):
        tag = "__o" if isinstance(obj, OrderedDict) else "__d"
        return {tag: [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, np.ndarray):
        return {"__n": [str(obj.dtype), base64.b64encode(obj.tobytes()).decode()]}
    name = _NAMES.get(type(obj))
    if name is None:
        raise CheckpointError(f"cannot checkpoint a {type(obj).__qualname__}")
    exclude = getattr(obj, "_checkpoint_exclude", ())
    if dataclasses.is_dataclass(obj):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in exclude}
    else:
        items = dict(vars(obj))
    return {"__c": name, "v": {k: encode(v) for k, v in items.items()}}


def decode(data: Any) -> Any:
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(x) for x in data]
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise CheckpointError("malformed checkpoint value")
    if "__f" in data:
        return float(data["__f"])
    if "__t" in data:
        return tuple(decode(x) for x in data["__t"])
    if "__d" in data:
        return {decode(k): decode(v) for k, v in data["__d"]}
    if "__o" in data:
        return OrderedDict((decode(k), decode(v)) for k, v in data["__o"])
    if "__n" in data:
        dtype, raw = data["__n"]
        if dtype not in ("float32", "float64", "int64", "int32", "int8", "bool"):
            raise CheckpointError(f"array dtype {dtype!r} not allowed")
        return np.frombuffer(base64.b64decode(raw), dtype=dtype).copy()
    return _rebuild(data)


def _default(cls: type, spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    raise CheckpointError(f"checkpoint of {cls.__qualname__} lacks {spec.name!r}, which has no default")


def _rebuild(data: dict[str, Any]) -> Any:
    cls = ALLOWED.get(data.get("__c", ""))
    if cls is None:
        raise CheckpointError(f"class {data.get('__c')!r} is not allowed in a checkpoint")
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
    obj = cls.__new__(cls)
    for key, value in data["v"].items():
        if (fields is not None and key not in fields) or key.startswith("__"):
            raise CheckpointError(f"field {key!r} is not part of {cls.__qualname__}")
        object.__setattr__(obj, key, decode(value))
    for name, spec in (fields or {}).items():  # a field added since the checkpoint was written
        if name not in data["v"] and name not in getattr(cls, "_checkpoint_exclude", ()):
            object.__setattr__(obj, name, _default(cls, spec))
    restore = getattr(obj, "_after_restore", None)
    if restore is not None:
        restore()
    return obj
