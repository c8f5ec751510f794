"""Contract v1 events: decoding and validation of what producers send.

Every rejection is an :class:`InvalidEvent` whose message is one line naming
the field, so it can go to the dead-letter topic as it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import orjson

from streams.errors import InvalidEvent

MODEL_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_PREDICTION_ID = 256
MAX_FEATURE_NAME = 128
# Epoch seconds beyond this (year 5138) are read as milliseconds; beyond the next, rejected.
MAX_EPOCH_S = 1e11
MAX_EPOCH_MS = 1e14

Label = float | int | str | bool
FeatureValue = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One valid prediction (contract v1), with its event time resolved.

    >>> PredictionEvent.parse({"model_id": "churn", "prediction_id": "p1",
    ...     "features": {"age": 42}, "prediction": 1}, record_ts=1.5).timestamp
    1.5
    """

    model_id: str
    prediction_id: str
    features: Mapping[str, FeatureValue]
    prediction: Label
    score: float | None
    model_version: str
    timestamp: float
    segment: Mapping[str, str] | None

    @classmethod
    def parse(cls, obj: Any, record_ts: float) -> PredictionEvent:
        """Validate a decoded JSON object; raise :class:`InvalidEvent` naming the bad field."""
        model_id, prediction_id = _identity(obj)
        try:
            return cls(
                model_id,
                prediction_id,
                _features(obj.get("features", _MISSING)),
                _label(obj.get("prediction", _MISSING), "prediction"),
                _score(obj.get("score")),
                _optional_string(obj.get("model_version"), "model_version"),
                _timestamp(obj.get("timestamp"), record_ts),
                _segment(obj.get("segment")),
            )
        except InvalidEvent as exc:
            raise InvalidEvent(str(exc), model_id) from None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "prediction", "model_id": self.model_id, "prediction_id": self.prediction_id,
            "features": self.features, "prediction": self.prediction, "score": self.score,
            "model_version": self.model_version, "timestamp": self.timestamp, "segment": self.segment,
        }


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """One valid outcome: the true label of an earlier (or later) prediction.

    >>> OutcomeEvent.parse({"model_id": "churn", "prediction_id": "p1", "label": 0,
    ...     "timestamp": "2026-01-01T00:00:00Z"}, record_ts=0.0).timestamp
    1767225600.0
    """

    model_id: str
    prediction_id: str
    label: Label
    timestamp: float

    @classmethod
    def parse(cls, obj: Any, record_ts: float) -> OutcomeEvent:
        model_id, prediction_id = _identity(obj)
        try:
            label = _label(obj.get("label", _MISSING), "label")
            return cls(model_id, prediction_id, label, _timestamp(obj.get("timestamp"), record_ts))
        except InvalidEvent as exc:
            raise InvalidEvent(str(exc), model_id) from None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "outcome", "model_id": self.model_id, "prediction_id": self.prediction_id,
            "label": self.label, "timestamp": self.timestamp,
        }


def decode_message(raw: bytes | None) -> list[Any]:
    """Decode one Kafka message value into its events (one object, or a batch array).

    >>> decode_message(b'[{"a": 1}, {"b": 2}]')
    [{'a': 1}, {'b': 2}]
    >>> decode_message(b'42')
    Traceback (most recent call last):
    ...
    streams.errors.InvalidEvent: message: must be a JSON object or an array of objects, got number
    """
    if raw is None:
        raise InvalidEvent("message: empty value (tombstone)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"message: not valid JSON ({exc})") from None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise InvalidEvent(f"message: must be a JSON object or an array of objects, got {_json_type(value)}")


_MISSING = object()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _identity(obj: Any) -> tuple[str, str]:
    if not isinstance(obj, dict):
        raise InvalidEvent(f"event: must be a JSON object, got {_json_type(obj)}")
    model_id = obj.get("model_id", _MISSING)
    if model_id is _MISSING:
        raise InvalidEvent("model_id: required field is missing")
    if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
        shown = model_id if isinstance(model_id, str) else _json_type(model_id)
        raise InvalidEvent(
            f"model_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -, got {str(shown)[:64]!r}"
        )
    prediction_id = obj.get("prediction_id", _MISSING)
    if prediction_id is _MISSING:
        raise InvalidEvent("prediction_id: required field is missing", model_id)
    if not isinstance(prediction_id, str) or not 1 <= len(prediction_id) <= MAX_PREDICTION_ID:
        raise InvalidEvent(f"prediction_id: must be a string of 1 to 256 characters, got {_json_type(prediction_id)}"
                           if not isinstance(prediction_id, str) else
                           f"prediction_id: must be 1 to 256 characters, got {len(prediction_id)}", model_id)
    return model_id, prediction_id


def _name(name: str) -> str:
    """A field name as it can appear in a one-line error: escaped and cut short."""
    return name.encode("unicode_escape").decode("ascii")[:64]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: float | int, field: str) -> float | int:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(f"{field}: must be a finite number")
    return value


def _features(value: Any) -> dict[str, FeatureValue]:
    if value is _MISSING:
        raise InvalidEvent("features: required field is missing")
    if not isinstance(value, dict):
        raise InvalidEvent(f"features: must be an object of name to value, got {_json_type(value)}")
    for name, item in value.items():
        if len(name) > MAX_FEATURE_NAME:
            raise InvalidEvent(f"features: name {_name(name)[:32]}... is longer than 128 characters")
        if isinstance(item, (dict, list)):
            raise InvalidEvent(
                f"features.{_name(name)}: must be a number, string, boolean or null, got {_json_type(item)}"
            )
        if isinstance(item, float):
            _finite(item, f"features.{_name(name)}")
    return value


def _label(value: Any, field: str) -> Label:
    if value is _MISSING:
        raise InvalidEvent(f"{field}: required field is missing")
    if isinstance(value, (str, bool)):
        return value
    if _is_number(value):
        return _finite(value, field)
    raise InvalidEvent(f"{field}: must be a number, string or boolean, got {_json_type(value)}")


def _score(value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        shown = value if _is_number(value) else _json_type(value)
        raise InvalidEvent(f"score: must be a number in [0, 1], got {shown}")
    return float(value)


def _optional_string(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{field}: must be a string, got {_json_type(value)}")
    return value


def _timestamp(value: Any, record_ts: float) -> float:
    if value is None:
        return record_ts
    if _is_number(value):
        if not math.isfinite(value) or not 0 <= value < MAX_EPOCH_MS:
            raise InvalidEvent(f"timestamp: must be Unix epoch seconds, got {value}")
        return float(value) / 1000.0 if value >= MAX_EPOCH_S else float(value)
    if isinstance(value, str):
        return _rfc3339(value)
    raise InvalidEvent(f"timestamp: must be an RFC 3339 string or epoch seconds, got {_json_type(value)}")


def _rfc3339(text: str) -> float:
    if len(text) < 16 or text[10] not in "Tt ":
        raise InvalidEvent(f"timestamp: not an RFC 3339 date-time: {text[:64]!r}")
    try:
        moment = datetime.fromisoformat(text.upper() if text.endswith("z") else text)
    except ValueError:
        raise InvalidEvent(f"timestamp: not an RFC 3339 date-time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # no offset, as isoformat() writes: read as UTC
    return moment.timestamp()


def _segment(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidEvent(f"segment: must be an object of string to string, got {_json_type(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise InvalidEvent(f"segment.{_name(name)}: must be a string, got {_json_type(item)}")
    return value
