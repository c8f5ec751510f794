"""Contract v1 events, decoded and validated once, in C (msgspec).

A message's value is one event or a JSON array of them. Each event is
validated on its own: one bad event rejects only itself. An event the fast
decoder refuses goes through :mod:`streams.validation`, which says in one line
what is wrong with it, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar, cast

import msgspec
import orjson
from msgspec import Meta

from detectors.columns import FeatureValue, Label
from streams import validation as v
from streams.errors import InvalidEvent

__all__ = [
    "Decoded",
    "Invalid",
    "OutcomeEvent",
    "PredictionEvent",
    "Reject",
    "decode_message",
    "decode_outcomes",
    "decode_predictions",
]

decode_message = v.decode_message


class PredictionEvent(msgspec.Struct, tag="p", array_like=True, gc=False):
    """One valid prediction (contract v1), with its event time resolved.

    >>> PredictionEvent.parse({"model_id": "churn", "prediction_id": "p1",
    ...     "features": {"age": 42}, "prediction": 1}, record_ts=1.5).timestamp
    1.5
    """

    model_id: str
    prediction_id: str
    features: dict[str, FeatureValue]
    prediction: Label
    score: float | None = None
    model_version: str = ""
    timestamp: float = 0.0
    segment: dict[str, str] | None = None

    @classmethod
    def parse(cls, obj: Any, record_ts: float) -> PredictionEvent:
        """Validate a decoded JSON object; raise :class:`InvalidEvent` naming the bad field."""
        model_id, prediction_id = v.identity(obj)
        try:
            return cls(
                model_id,
                prediction_id,
                v.features(obj.get("features", v.MISSING)),
                v.label(obj.get("prediction", v.MISSING), "prediction"),
                v.score(obj.get("score")),
                v.optional_string(obj.get("model_version"), "model_version"),
                v.timestamp(obj.get("timestamp"), record_ts),
                v.segment(obj.get("segment")),
            )
        except InvalidEvent as exc:
            raise InvalidEvent(str(exc), model_id) from None


class OutcomeEvent(msgspec.Struct, tag="o", array_like=True, gc=False):
    """One valid outcome: the true label of an earlier (or later) prediction.

    >>> OutcomeEvent.parse({"model_id": "churn", "prediction_id": "p1", "label": 0,
    ...     "timestamp": "2026-01-01T00:00:00Z"}, record_ts=0.0).timestamp
    1767225600.0
    """

    model_id: str
    prediction_id: str
    label: Label
    timestamp: float = 0.0

    @classmethod
    def parse(cls, obj: Any, record_ts: float) -> OutcomeEvent:
        model_id, prediction_id = v.identity(obj)
        try:
            return cls(
                model_id,
                prediction_id,
                v.label(obj.get("label", v.MISSING), "label"),
                v.timestamp(obj.get("timestamp"), record_ts),
            )
        except InvalidEvent as exc:
            raise InvalidEvent(str(exc), model_id) from None


class Invalid(msgspec.Struct, tag="i", array_like=True, gc=False):
    """A rejected event whose model is known: it counts in that model's ``invalid``."""

    model_id: str


# -- the fast path: what producers send, decoded straight into typed structs ------------------

_PredictionId = Annotated[str, Meta(min_length=1, max_length=v.MAX_PREDICTION_ID)]
_Timestamp = float | int | str | None


class _PredictionWire(msgspec.Struct):
    model_id: str  # checked by _known_names: a pattern in the decoder costs more than the rest of it
    prediction_id: _PredictionId
    features: dict[str, float | int | str | bool | None]  # names: _known_names
    prediction: float | int | str | bool
    score: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    model_version: str | None = None
    timestamp: _Timestamp = None
    segment: dict[str, str] | None = None


class _OutcomeWire(msgspec.Struct):
    model_id: str  # checked by _known_names: a pattern in the decoder costs more than the rest of it
    prediction_id: _PredictionId
    label: float | int | str | bool
    timestamp: _Timestamp = None


# Model ids and feature names that passed their check (they repeat: a set lookup instead of a regex or a
# length per value); cleared when large, so a flood of new names costs checks, not memory.
_MODEL_IDS: set[str] = set()
_FEATURE_NAMES: set[str] = set()
_KNOWN_LIMIT = 100_000


def _known_names(model_id: str, features: dict[str, Any] | None = None) -> None:
    """Raise :class:`InvalidEvent` unless the model id and the feature names are valid (the careful path then
    says which one is not, and why)."""
    if model_id in _MODEL_IDS and (features is None or _FEATURE_NAMES.issuperset(features)):
        return
    if not v.MODEL_ID.fullmatch(model_id):
        raise InvalidEvent("model_id: invalid", None)
    if features is not None and any(len(name) > v.MAX_FEATURE_NAME for name in features):
        raise InvalidEvent("features: a name is too long", model_id)
    for known in (_MODEL_IDS, _FEATURE_NAMES):
        if len(known) > _KNOWN_LIMIT:
            known.clear()
    _MODEL_IDS.add(model_id)
    _FEATURE_NAMES.update(features or ())


def _event_time(value: _Timestamp, record_ts: float) -> float:
    if value is None:
        return record_ts
    if type(value) is float and 0.0 <= value < v.MAX_EPOCH_S:
        return value
    return v.timestamp(value, record_ts)


def _prediction(w: _PredictionWire, record_ts: float) -> PredictionEvent:
    _known_names(w.model_id, w.features)
    return PredictionEvent(
        w.model_id,
        w.prediction_id,
        w.features,
        w.prediction,
        w.score,
        w.model_version or "",
        _event_time(w.timestamp, record_ts),
        w.segment,
    )


def _outcome(w: _OutcomeWire, record_ts: float) -> OutcomeEvent:
    _known_names(w.model_id)
    return OutcomeEvent(w.model_id, w.prediction_id, w.label, _event_time(w.timestamp, record_ts))


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected event (or a whole message, ``index`` None) and why."""

    error: str
    index: int | None
    payload: bytes | None
    model_id: str | None


E = TypeVar("E", PredictionEvent, OutcomeEvent)


@dataclass(slots=True)
class Decoded(Generic[E]):
    """What one message holds: its valid events, with their index in the message, and its rejects."""

    events: list[E] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


class _Kind(Generic[E]):
    def __init__(self, wire: type[Any], build: Any, parse: Any) -> None:
        self.one = msgspec.json.Decoder(wire)
        self.many = msgspec.json.Decoder(list[wire])  # type: ignore[valid-type]
        self.build, self.parse = build, parse

    def decode(self, raw: bytes | None, record_ts: float) -> Decoded[E]:
        if not raw:
            return self._careful(raw, record_ts, False)
        out: Decoded[E] = Decoded()
        head = raw.lstrip()[:1]
        try:
            if head == b"{":
                out.events.append(self.build(self.one.decode(raw), record_ts))
                out.indices.append(0)
                return out
            if head == b"[":
                out.events = [self.build(w, record_ts) for w in self.many.decode(raw)]
                out.indices = list(range(len(out.events)))
                return out
        except (msgspec.ValidationError, msgspec.DecodeError, InvalidEvent, RecursionError):
            pass
        return self._careful(raw, record_ts, head == b"[")

    def _careful(self, raw: bytes | None, record_ts: float, is_batch: bool) -> Decoded[E]:
        """Event by event, with the validator's one-line error for each one refused."""
        out: Decoded[E] = Decoded()
        try:
            if is_batch and raw is not None:
                items = msgspec.json.decode(raw, type=list[msgspec.Raw])
            else:
                items = v.decode_message(raw)
        except InvalidEvent as exc:
            out.rejects.append(Reject(str(exc), None, raw, None))
            return out
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            try:
                v.decode_message(raw)
                message = "message: not valid JSON"
            except InvalidEvent as exc:
                message = str(exc)
            except RecursionError:
                message = "message: not valid JSON (nested too deeply)"
            out.rejects.append(Reject(message, None, raw, None))
            return out
        body = cast(bytes, raw)  # not None: decode_message refuses a tombstone
        for index, item in enumerate(items):
            payload = bytes(item) if isinstance(item, msgspec.Raw) else body
            try:
                event = self.build(self.one.decode(payload), record_ts)
            except (msgspec.ValidationError, msgspec.DecodeError, InvalidEvent, RecursionError):
                try:
                    event = self.parse(orjson.loads(payload) if is_batch else item, record_ts)
                except InvalidEvent as exc:
                    out.rejects.append(Reject(str(exc), index if is_batch else None, payload, exc.model_id))
                    continue
                except orjson.JSONDecodeError as exc:
                    out.rejects.append(Reject(f"event: not valid JSON ({exc})", index, payload, None))
                    continue
            out.events.append(event)
            out.indices.append(index)
        return out


_PREDICTIONS: _Kind[PredictionEvent] = _Kind(_PredictionWire, _prediction, PredictionEvent.parse)
_OUTCOMES: _Kind[OutcomeEvent] = _Kind(_OutcomeWire, _outcome, OutcomeEvent.parse)


def decode_predictions(raw: bytes | None, record_ts: float) -> Decoded[PredictionEvent]:
    """The prediction events of one message, and its rejects.

    >>> d = decode_predictions(
    ...     b'[{"model_id": "m", "prediction_id": "1", "features": {}, "prediction": 1},'
    ...     b' {"model_id": "m", "prediction_id": "2", "features": {}, "prediction": 1, "score": 2}]',
    ...     5.0,
    ... )
    >>> [e.prediction_id for e in d.events], [(r.index, r.error, r.model_id) for r in d.rejects]
    (['1'], [(1, 'score: must be a number in [0, 1], got 2', 'm')])
    """
    return _PREDICTIONS.decode(raw, record_ts)


def decode_outcomes(raw: bytes | None, record_ts: float) -> Decoded[OutcomeEvent]:
    """The outcome events of one message, and its rejects.

    >>> decode_outcomes(b'{"model_id": "m", "prediction_id": "1", "label": "spam"}', 5.0).events[0].timestamp
    5.0
    """
    return _OUTCOMES.decode(raw, record_ts)
