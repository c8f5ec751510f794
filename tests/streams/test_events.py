"""Contract v1 validation: every rejection names its field in one line; valid events parse as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import InvalidEvent
from streams.events import OutcomeEvent, PredictionEvent, decode_message, decode_outcomes, decode_predictions

RECORD_TS = 1_700_000_000.25
MISSING = object()


def prediction(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "model_id": "churn-v2",
        "prediction_id": "p-1",
        "features": {"age": 42, "plan": "pro"},
        "prediction": 1,
        "score": 0.8,
        "model_version": "v2",
        "timestamp": "2026-01-01T00:00:00Z",
        "segment": {"region": "eu"},
    }
    for name, value in changes.items():
        if value is MISSING:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def outcome(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"model_id": "churn-v2", "prediction_id": "p-1", "label": 0, "timestamp": 1767225600}
    for name, value in changes.items():
        if value is MISSING:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def rejection(parse: Any, obj: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        parse(obj, RECORD_TS)
    return info.value


# --- decode_message -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,got",
    [
        (b"{not json", None),
        (b"", None),
        (b'{"model_id": "m",', None),
        (b"\xff\xfe{}", None),
        (b"42", "number"),
        (b"-1.5", "number"),
        (b'"an event"', "string"),
        (b"null", "null"),
        (b"true", "boolean"),
        (None, None),  # a tombstone
    ],
)
def test_decode_message_rejects_what_is_not_an_object_or_array(raw: bytes | None, got: str | None) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_message(raw)
    message = str(info.value)
    assert message.startswith("message: ")
    assert "\n" not in message
    assert info.value.model_id is None
    if got is not None:
        assert message.endswith(f"got {got}")


@pytest.mark.parametrize(
    "raw,events",
    [
        (b'{"a": 1}', [{"a": 1}]),
        (b'[{"a": 1}, {"b": 2}]', [{"a": 1}, {"b": 2}]),
        (b' [{"a": 1}] ', [{"a": 1}]),
        (b"[]", []),
        (b'[1, "x", null, []]', [1, "x", None, []]),  # elements are judged one by one, later
    ],
)
def test_decode_message_accepts_objects_and_arrays(raw: bytes, events: list[Any]) -> None:
    assert decode_message(raw) == events


# --- rejections -----------------------------------------------------------------------------------

BAD_MODEL_IDS = [
    pytest.param(MISSING, id="model_id-missing"),
    pytest.param(None, id="model_id-null"),
    pytest.param(7, id="model_id-number"),
    pytest.param(True, id="model_id-boolean"),
    pytest.param(["churn"], id="model_id-array"),
    pytest.param({"name": "churn"}, id="model_id-object"),
    pytest.param("", id="model_id-empty"),
    pytest.param("x" * 129, id="model_id-129-chars"),
    pytest.param("churn model", id="model_id-space"),
    pytest.param("churn/v2", id="model_id-slash"),
    pytest.param("churn{x}", id="model_id-braces"),
    pytest.param("modèle", id="model_id-non-ascii"),
    pytest.param("churn\n", id="model_id-newline"),
    pytest.param("١٢٣", id="model_id-unicode-digits"),
]


@pytest.mark.parametrize(
    "parse,make", [(PredictionEvent.parse, prediction), (OutcomeEvent.parse, outcome)], ids=["prediction", "outcome"]
)
@pytest.mark.parametrize("model_id", BAD_MODEL_IDS)
def test_bad_model_id(parse: Any, make: Any, model_id: Any) -> None:
    exc = rejection(parse, make(model_id=model_id))
    assert str(exc).startswith("model_id: ")
    assert "\n" not in str(exc)
    assert exc.model_id is None  # the model is unknown: nothing to count it against


@pytest.mark.parametrize(
    "parse,make", [(PredictionEvent.parse, prediction), (OutcomeEvent.parse, outcome)], ids=["prediction", "outcome"]
)
@pytest.mark.parametrize(
    "prediction_id",
    [
        pytest.param(MISSING, id="missing"),
        pytest.param(None, id="null"),
        pytest.param(17, id="number"),
        pytest.param(["p"], id="array"),
        pytest.param({}, id="object"),
        pytest.param(False, id="boolean"),
        pytest.param("", id="empty"),
        pytest.param("p" * 257, id="257-chars"),
    ],
)
def test_bad_prediction_id(parse: Any, make: Any, prediction_id: Any) -> None:
    exc = rejection(parse, make(prediction_id=prediction_id))
    assert str(exc).startswith("prediction_id: ")
    assert exc.model_id == "churn-v2"


PREDICTION_REJECTIONS = [
    # features
    pytest.param({"features": MISSING}, "features", id="features-missing"),
    pytest.param({"features": None}, "features", id="features-null"),
    pytest.param({"features": [1, 2]}, "features", id="features-array"),
    pytest.param({"features": "age=42"}, "features", id="features-string"),
    pytest.param({"features": 42}, "features", id="features-number"),
    pytest.param({"features": {"age": {"years": 42}}}, "features.age", id="features-nested-object"),
    pytest.param({"features": {"tags": ["a", "b"]}}, "features.tags", id="features-array-value"),
    pytest.param({"features": {"f" * 129: 1}}, "features", id="features-name-129-chars"),
    # prediction
    pytest.param({"prediction": MISSING}, "prediction", id="prediction-missing"),
    pytest.param({"prediction": None}, "prediction", id="prediction-null"),
    pytest.param({"prediction": {"class": 1}}, "prediction", id="prediction-object"),
    pytest.param({"prediction": [1]}, "prediction", id="prediction-array"),
    # score
    pytest.param({"score": 1.5}, "score", id="score-above-1"),
    pytest.param({"score": -0.01}, "score", id="score-below-0"),
    pytest.param({"score": 2}, "score", id="score-integer-2"),
    pytest.param({"score": "0.5"}, "score", id="score-string"),
    pytest.param({"score": True}, "score", id="score-boolean"),
    pytest.param({"score": [0.5]}, "score", id="score-array"),
    # model_version
    pytest.param({"model_version": 3}, "model_version", id="model_version-number"),
    pytest.param({"model_version": ["v1"]}, "model_version", id="model_version-array"),
    # timestamp
    pytest.param({"timestamp": "yesterday"}, "timestamp", id="timestamp-unparseable"),
    pytest.param({"timestamp": "2026-01-01"}, "timestamp", id="timestamp-date-only"),
    pytest.param({"timestamp": "2026-13-01T00:00:00Z"}, "timestamp", id="timestamp-month-13"),
    pytest.param({"timestamp": "2026-01-01T25:00:00Z"}, "timestamp", id="timestamp-hour-25"),
    pytest.param({"timestamp": "01/01/2026 00:00:00 +0000"}, "timestamp", id="timestamp-us-format"),
    pytest.param({"timestamp": ""}, "timestamp", id="timestamp-empty-string"),
    pytest.param({"timestamp": -1}, "timestamp", id="timestamp-negative"),
    pytest.param({"timestamp": -0.5}, "timestamp", id="timestamp-negative-float"),
    pytest.param({"timestamp": True}, "timestamp", id="timestamp-boolean"),
    pytest.param({"timestamp": {"s": 1}}, "timestamp", id="timestamp-object"),
    # segment
    pytest.param({"segment": ["eu"]}, "segment", id="segment-array"),
    pytest.param({"segment": "eu"}, "segment", id="segment-string"),
    pytest.param({"segment": {"region": 1}}, "segment.region", id="segment-number-value"),
    pytest.param({"segment": {"region": None}}, "segment.region", id="segment-null-value"),
    pytest.param({"segment": {"region": {"eu": True}}}, "segment.region", id="segment-object-value"),
]


@pytest.mark.parametrize("changes,field", PREDICTION_REJECTIONS)
def test_prediction_rejections_name_the_field(changes: dict[str, Any], field: str) -> None:
    exc = rejection(PredictionEvent.parse, prediction(**changes))
    message = str(exc)
    assert message.startswith(f"{field}: "), message
    assert "\n" not in message
    assert exc.model_id == "churn-v2"


OUTCOME_REJECTIONS = [
    pytest.param({"label": MISSING}, "label", id="label-missing"),
    pytest.param({"label": None}, "label", id="label-null"),
    pytest.param({"label": {"class": 1}}, "label", id="label-object"),
    pytest.param({"label": [0]}, "label", id="label-array"),
    pytest.param({"timestamp": "2026-01-01"}, "timestamp", id="timestamp-date-only"),
    pytest.param({"timestamp": -5}, "timestamp", id="timestamp-negative"),
]


@pytest.mark.parametrize("changes,field", OUTCOME_REJECTIONS)
def test_outcome_rejections_name_the_field(changes: dict[str, Any], field: str) -> None:
    exc = rejection(OutcomeEvent.parse, outcome(**changes))
    assert str(exc).startswith(f"{field}: ")
    assert "\n" not in str(exc)
    assert exc.model_id == "churn-v2"


@pytest.mark.parametrize("parse", [PredictionEvent.parse, OutcomeEvent.parse], ids=["prediction", "outcome"])
@pytest.mark.parametrize("element", [1, "event", None, [], [{"model_id": "m"}], True])
def test_a_batch_element_that_is_not_an_object(parse: Any, element: Any) -> None:
    exc = rejection(parse, element)
    assert str(exc).startswith("event: must be a JSON object")
    assert exc.model_id is None


def test_the_first_bad_field_wins_and_the_message_says_what_it_got() -> None:
    exc = rejection(PredictionEvent.parse, prediction(score=7, timestamp="nope"))
    assert str(exc) == "score: must be a number in [0, 1], got 7"
    assert str(rejection(PredictionEvent.parse, prediction(features=[]))).endswith("got array")
    assert "seconds" in str(rejection(PredictionEvent.parse, prediction(timestamp=1e16)))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-01-01T00:00:00", 1767225600.0),  # no offset, as datetime.isoformat() writes: read as UTC
        ("2026-01-01T00:00:00.250", 1767225600.25),
        (1767225600000, 1767225600.0),  # epoch milliseconds, as Java producers send: read as milliseconds
        (1767225600250.0, 1767225600.25),
    ],
)
def test_common_near_misses_of_the_timestamp_contract_are_read_not_rejected(value: Any, expected: float) -> None:
    assert PredictionEvent.parse(prediction(timestamp=value), record_ts=0.0).timestamp == expected
    assert OutcomeEvent.parse(outcome(timestamp=value), record_ts=0.0).timestamp == expected


def test_a_long_bad_model_id_is_shortened_in_the_message() -> None:
    exc = rejection(PredictionEvent.parse, prediction(model_id="x" * 5000))
    assert len(str(exc)) < 200


@pytest.mark.parametrize(
    "changes",
    [
        {"features": {"a\nb": {"x": 1}}},
        {"segment": {"a\nb": 1}},
    ],
    ids=["feature-name", "segment-name"],
)
def test_messages_stay_on_one_line_whatever_the_names(changes: dict[str, Any]) -> None:
    exc = rejection(PredictionEvent.parse, prediction(**changes))
    assert "\n" not in str(exc)


# --- valid events ---------------------------------------------------------------------------------


def test_a_full_prediction() -> None:
    event = PredictionEvent.parse(prediction(), RECORD_TS)
    assert event.model_id == "churn-v2"
    assert event.prediction_id == "p-1"
    assert event.features == {"age": 42, "plan": "pro"}
    assert (event.prediction, event.score, event.model_version) == (1, 0.8, "v2")
    assert event.timestamp == 1767225600.0
    assert event.segment == {"region": "eu"}
    assert event == PredictionEvent(
        "churn-v2", "p-1", {"age": 42, "plan": "pro"}, 1, 0.8, "v2", 1767225600.0, {"region": "eu"}
    )
    assert decode_predictions(json.dumps(prediction()).encode(), RECORD_TS).events == [event]  # the fast path agrees


def test_a_minimal_prediction_gets_the_defaults() -> None:
    minimal = {"model_id": "m", "prediction_id": "p", "features": {}, "prediction": "spam"}
    event = PredictionEvent.parse(minimal, RECORD_TS)
    assert event.score is None
    assert event.model_version == ""
    assert event.timestamp == RECORD_TS  # the record's timestamp when absent
    assert event.segment is None


@pytest.mark.parametrize(
    "changes",
    [
        {"score": None},
        {"model_version": None},
        {"timestamp": None},
        {"segment": None},
    ],
    ids=["score", "model_version", "timestamp", "segment"],
)
def test_explicit_nulls_for_optional_fields_mean_absent(changes: dict[str, Any]) -> None:
    event = PredictionEvent.parse(prediction(**changes), RECORD_TS)
    name = next(iter(changes))
    assert getattr(event, name) == {"score": None, "model_version": "", "timestamp": RECORD_TS, "segment": None}[name]


def test_every_feature_value_type() -> None:
    features = {
        "int": 3,
        "float": 2.5,
        "neg": -1e300,
        "zero": 0,
        "str": "pro",
        "empty": "",
        "true": True,
        "false": False,
        "null": None,
        "f" * 128: 1,
        "": "unnamed",
        "ünï cödé": 1,
    }
    event = PredictionEvent.parse(prediction(features=features), RECORD_TS)
    assert event.features == features
    assert event.features["true"] is True and event.features["null"] is None


@pytest.mark.parametrize("value", [True, False, "spam", "", 0, 3, -7, 0.0, 0.731, 1e300])
def test_prediction_types(value: Any) -> None:
    event = PredictionEvent.parse(prediction(prediction=value), RECORD_TS)
    assert event.prediction == value and type(event.prediction) is type(value)


@pytest.mark.parametrize("value", [True, False, "churned", "", 0, 1, 12.5])
def test_label_types(value: Any) -> None:
    event = OutcomeEvent.parse(outcome(label=value), RECORD_TS)
    assert event.label == value and type(event.label) is type(value)


@pytest.mark.parametrize("score", [0, 1, 0.0, 1.0, 0.5, 1e-12])
def test_score_bounds_are_inclusive(score: float) -> None:
    event = PredictionEvent.parse(prediction(score=score), RECORD_TS)
    assert event.score == float(score) and isinstance(event.score, float)


@pytest.mark.parametrize(
    "text,epoch",
    [
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T00:00:00z", 1767225600.0),
        ("2026-01-01t00:00:00Z", 1767225600.0),
        ("2026-01-01T00:00:00+00:00", 1767225600.0),
        ("2026-01-01T01:00:00+01:00", 1767225600.0),
        ("2025-12-31T19:00:00-05:00", 1767225600.0),
        ("2026-01-01T05:30:00+05:30", 1767225600.0),
        ("2026-01-01T00:00:00.250Z", 1767225600.25),
        ("2026-01-01T00:00:00.5+01:00", 1767222000.5),
        ("2026-01-01T00:00:00.123456Z", 1767225600.123456),
        ("1970-01-01T00:00:00Z", 0.0),
    ],
)
def test_rfc3339_timestamps(text: str, epoch: float) -> None:
    assert PredictionEvent.parse(prediction(timestamp=text), RECORD_TS).timestamp == pytest.approx(epoch, abs=1e-6)
    assert OutcomeEvent.parse(outcome(timestamp=text), RECORD_TS).timestamp == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("value", [0, 1767225600, 1767225600.5, 1e10, 99_999_999_999])
def test_epoch_second_timestamps(value: float) -> None:
    event = PredictionEvent.parse(prediction(timestamp=value), RECORD_TS)
    assert event.timestamp == float(value) and isinstance(event.timestamp, float)


def test_an_outcome_parses() -> None:
    event = OutcomeEvent.parse(outcome(), RECORD_TS)
    assert event == OutcomeEvent("churn-v2", "p-1", 0, 1767225600.0)
    assert decode_outcomes(json.dumps(outcome()).encode(), RECORD_TS).events == [event]
    assert OutcomeEvent.parse(outcome(timestamp=MISSING), RECORD_TS).timestamp == RECORD_TS


@pytest.mark.parametrize("model_id", ["a", "x" * 128, "Churn.v2_eu:prod-1", "0", "..", "-:_."])
def test_model_id_limits_and_alphabet(model_id: str) -> None:
    assert PredictionEvent.parse(prediction(model_id=model_id), RECORD_TS).model_id == model_id
    assert OutcomeEvent.parse(outcome(model_id=model_id), RECORD_TS).model_id == model_id


@pytest.mark.parametrize("prediction_id", ["p", "p" * 256, "order 17 / line 3", "ünïcode", "{}"])
def test_prediction_id_limits(prediction_id: str) -> None:
    assert PredictionEvent.parse(prediction(prediction_id=prediction_id), RECORD_TS).prediction_id == prediction_id


def test_unknown_fields_are_ignored() -> None:
    event = PredictionEvent.parse(prediction(extra={"anything": [1, 2]}, schema_version=3), RECORD_TS)
    assert event == PredictionEvent.parse(prediction(), RECORD_TS)
    fast = decode_predictions(json.dumps(prediction(extra={"anything": [1, 2]})).encode(), RECORD_TS)
    assert fast.events == [event] and not fast.rejects


def test_a_decoded_batch_parses_event_by_event() -> None:
    raw = b'[{"model_id": "a", "prediction_id": "1", "label": 1}, {"model_id": "b", "prediction_id": "2"}]'
    first, second = decode_message(raw)
    assert OutcomeEvent.parse(first, RECORD_TS).model_id == "a"
    exc = rejection(OutcomeEvent.parse, second)
    assert str(exc).startswith("label: ") and exc.model_id == "b"


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01 00:00:00", "soon", "m", "p"])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FIELD_VALUES = {
    "model_id": st.sampled_from(["m", "churn-v2", "x" * 129, "bad id", ""]) | JSON_VALUES,
    "prediction_id": st.sampled_from(["p", "", "p" * 257]) | JSON_VALUES,
    "features": st.dictionaries(st.text(max_size=130), JSON_LEAVES, max_size=4) | JSON_VALUES,
    "prediction": JSON_VALUES,
    "label": JSON_VALUES,
    "score": st.floats(-1, 2) | JSON_VALUES,
    "model_version": JSON_VALUES,
    "timestamp": st.floats(-1, 2e14) | JSON_VALUES,
    "segment": JSON_VALUES,
}
EVENTS = st.fixed_dictionaries({}, optional=FIELD_VALUES)


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.booleans())
def test_the_fast_decoder_agrees_with_the_field_by_field_validator(obj: dict[str, Any], as_batch: bool) -> None:
    """What msgspec accepts, the validator accepts the same; what it refuses gets the validator's one-line error."""
    raw = json.dumps([obj] if as_batch else obj).encode()
    for decode, parse in ((decode_predictions, PredictionEvent.parse), (decode_outcomes, OutcomeEvent.parse)):
        decoded = decode(raw, RECORD_TS)
        try:
            expected = parse(json.loads(raw)[0] if as_batch else obj, RECORD_TS)
        except InvalidEvent as exc:
            assert decoded.events == []
            assert [(r.error, r.model_id) for r in decoded.rejects] == [(str(exc), exc.model_id)]
            assert decoded.rejects[0].index == (0 if as_batch else None)
        else:
            assert decoded.events == [expected] and decoded.rejects == []


model_ids = st.one_of(st.sampled_from(["churn", "fraud:v2", "a" * 128]), st.text(max_size=130))
feature_names = st.one_of(st.sampled_from(["age", "plan", "n" * 128]), st.text(max_size=3), st.just("n" * 129))


def _valid(doc: dict[str, Any]) -> bool:
    try:
        PredictionEvent.parse(doc, 0.0)
    except InvalidEvent:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(model_ids, st.lists(feature_names, max_size=4)), min_size=1, max_size=6))
def test_the_fast_decoder_takes_exactly_the_events_the_validator_takes(events: list[tuple[str, list[str]]]) -> None:
    docs = [
        {"model_id": m, "prediction_id": f"p{i}", "features": dict.fromkeys(names, 1.0), "prediction": 1}
        for i, (m, names) in enumerate(events)
    ]
    decoded = decode_predictions(json.dumps(docs).encode(), 0.0)
    assert decoded.indices == [i for i, doc in enumerate(docs) if _valid(doc)]
    assert sorted(decoded.indices + [r.index for r in decoded.rejects]) == list(range(len(docs)))
    outcomes = [{"model_id": m, "prediction_id": "p", "label": 1} for m, _ in events]
    taken = decode_outcomes(json.dumps(outcomes).encode(), 0.0).indices
    assert taken == [i for i, (m, _) in enumerate(events) if _valid({**docs[i], "features": {}})]
