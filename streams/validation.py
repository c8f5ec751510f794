"""Contract v1 validation, field by field, with one-line errors that name the field.

This is the careful path: it runs on events that the fast decoder
(:mod:`streams.events`) refused, to say exactly what is wrong with them, and on
decoded JSON values given directly. Every rejection is an
:class:`~streams.errors.InvalidEvent`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.columns import FeatureValue, Label, is_number
from streams.errors import InvalidEvent

MODEL_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_PREDICTION_ID = 256
MAX_FEATURE_NAME = 128
# Epoch seconds beyond this (year 5138) are read as milliseconds; beyond the next, rejected.
MAX_EPOCH_S = 1e11
MAX_EPOCH_MS = 1e14
MISSING = object()


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
    raise InvalidEvent(f"message: must be a JSON object or an array of objects, got {json_type(value)}")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def identity(obj: Any) -> tuple[str, str]:
    """``model_id`` and ``prediction_id`` of a decoded event."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"event: must be a JSON object, got {json_type(obj)}")
    model_id = obj.get("model_id", MISSING)
    if model_id is MISSING:
        raise InvalidEvent("model_id: required field is missing")
    if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
        shown = model_id if isinstance(model_id, str) else json_type(model_id)
        raise InvalidEvent(f"model_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -, got {str(shown)[:64]!r}")
    prediction_id = obj.get("prediction_id", MISSING)
    if prediction_id is MISSING:
        raise InvalidEvent("prediction_id: required field is missing", model_id)
    if not isinstance(prediction_id, str):
        raise InvalidEvent(
            f"prediction_id: must be a string of 1 to 256 characters, got {json_type(prediction_id)}", model_id
        )
    if not 1 <= len(prediction_id) <= MAX_PREDICTION_ID:
        raise InvalidEvent(f"prediction_id: must be 1 to 256 characters, got {len(prediction_id)}", model_id)
    return model_id, prediction_id


def field_name(name: str) -> str:
    """A field name as it can appear in a one-line error: escaped and cut short."""
    return name.encode("unicode_escape").decode("ascii")[:64]


def finite(value: float | int, field: str) -> float | int:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(f"{field}: must be a finite number")
    return value


def features(value: Any) -> dict[str, FeatureValue]:
    if value is MISSING:
        raise InvalidEvent("features: required field is missing")
    if not isinstance(value, dict):
        raise InvalidEvent(f"features: must be an object of name to value, got {json_type(value)}")
    for name, item in value.items():
        if len(name) > MAX_FEATURE_NAME:
            raise InvalidEvent(f"features: name {field_name(name)[:32]}... is longer than 128 characters")
        if isinstance(item, (dict, list)):
            raise InvalidEvent(
                f"features.{field_name(name)}: must be a number, string, boolean or null, got {json_type(item)}"
            )
        if isinstance(item, float):
            finite(item, f"features.{field_name(name)}")
    return value


def label(value: Any, field: str) -> Label:
    if value is MISSING:
        raise InvalidEvent(f"{field}: required field is missing")
    if isinstance(value, (str, bool)):
        return value
    if is_number(value):
        return finite(value, field)
    raise InvalidEvent(f"{field}: must be a number, string or boolean, got {json_type(value)}")


def score(value: Any) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not 0.0 <= value <= 1.0:
        shown = value if is_number(value) else json_type(value)
        raise InvalidEvent(f"score: must be a number in [0, 1], got {shown}")
    return float(value)


def optional_string(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{field}: must be a string, got {json_type(value)}")
    return value


def timestamp(value: Any, record_ts: float) -> float:
    """Event time in Unix seconds: the record's when absent; RFC 3339, epoch seconds or milliseconds."""
    if value is None:
        return record_ts
    if is_number(value):
        if not math.isfinite(value) or not 0 <= value < MAX_EPOCH_MS:
            raise InvalidEvent(f"timestamp: must be Unix epoch seconds, got {value}")
        return float(value) / 1000.0 if value >= MAX_EPOCH_S else float(value)
    if isinstance(value, str):
        return rfc3339_seconds(value)
    raise InvalidEvent(f"timestamp: must be an RFC 3339 string or epoch seconds, got {json_type(value)}")


def rfc3339_seconds(text: str) -> float:
    if len(text) < 16 or text[10] not in "Tt ":
        raise InvalidEvent(f"timestamp: not an RFC 3339 date-time: {text[:64]!r}")
    try:
        moment = datetime.fromisoformat(text.upper() if text.endswith("z") else text)
    except ValueError:
        raise InvalidEvent(f"timestamp: not an RFC 3339 date-time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # no offset, as isoformat() writes: read as UTC
    return moment.timestamp()


def segment(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidEvent(f"segment: must be an object of string to string, got {json_type(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise InvalidEvent(f"segment.{field_name(name)}: must be a string, got {json_type(item)}")
    return value
