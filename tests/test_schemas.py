"""The JSON Schemas in streams/schemas pin the v1 wire contract (shared CONTRACT.md).

Good examples must validate; each bad example is a good one with exactly one
field broken, and must be rejected at that field.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files

import pytest
from jsonschema import Draft202012Validator

SCHEMA_NAMES = ["prediction", "outcome", "alert", "deadletter"]
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


def load(name: str) -> dict:
    return json.loads((files("streams") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load(name), format_checker=FORMAT_CHECKER)


# --- realistic examples -----------------------------------------------------

PREDICTION = {
    "model_id": "fraud-scorer",
    "prediction_id": "txn-000184467",
    "model_version": "2025.03.1",
    "timestamp": "2025-03-14T09:26:53.589Z",
    "features": {
        "amount": 129.95,  # numeric
        "items": 3,  # numeric (integer)
        "merchant_category": "electronics",  # categorical
        "is_international": True,  # categorical (boolean)
        "account_age_days": None,  # missing
    },
    "prediction": "fraud",
    "score": 0.87,
    "segment": {"region": "eu-west", "channel": "web"},
}

OUTCOME = {
    "model_id": "fraud-scorer",
    "prediction_id": "txn-000184467",
    "label": "legit",
    "timestamp": "2025-03-15T11:02:07+01:00",
}

ALERT = {
    "alert_id": "fraud-scorer:data_drift:amount:7c1e2a9b",
    "model_id": "fraud-scorer",
    "model_version": "2025.03.1",
    "kind": "data_drift",
    "status": "firing",
    "severity": "critical",
    "feature": "amount",
    "segment": {"region": "eu-west"},
    "detector": "adwin",
    "statistic": 0.41,
    "threshold": 0.25,
    "n": 1800,
    "window_start": "2025-03-14T09:00:00Z",
    "window_end": "2025-03-14T09:26:53.589Z",
    "message": "fraud-scorer: feature amount drifted in region=eu-west: mean moved 0.41 baseline sd (bound 0.25)",
    "detected_at": "2025-03-14T09:26:54.102Z",
}

DEADLETTER = {
    "error": "features.basket: must be a number, string, boolean or null, got an array",
    "source_topic": "driftline.predictions",
    "partition": 3,
    "offset": 918273,
    "key": "fraud-scorer",
    "payload": json.dumps(
        {
            "model_id": "fraud-scorer",
            "prediction_id": "txn-000184470",
            "features": {"basket": [1, 2]},
            "prediction": "legit",
        }
    ),
    "rejected_at": "2025-03-14T09:26:55.004Z",
    "batch_index": 2,
}

DEADLETTER_BINARY = {
    "error": "payload: not valid UTF-8 JSON",
    "source_topic": "driftline.outcomes",
    "partition": 0,
    "offset": 17,
    "key": None,
    "payload": "gAN9cQBYBQAAAGxhYmVscQFLAXMu",
    "payload_encoding": "base64",
    "rejected_at": "2025-03-14T09:27:01Z",
}

BASES = {
    "prediction": PREDICTION,
    "outcome": OUTCOME,
    "alert": ALERT,
    "deadletter": DEADLETTER,
    "deadletter-binary": DEADLETTER_BINARY,
}


def variant(base: dict, **changes) -> dict:
    doc = copy.deepcopy(base)
    doc.update(changes)
    return doc


GOOD = [
    pytest.param("prediction", PREDICTION, id="prediction-full"),
    pytest.param(
        "prediction",
        {"model_id": "churn_v2", "prediction_id": "c-1", "features": {"tenure_months": 14}, "prediction": True},
        id="prediction-required-only",
    ),
    pytest.param(
        "prediction",
        {"model_id": "house-price:eu", "prediction_id": "q/77", "features": {}, "prediction": 412000.5},
        id="prediction-regression-no-features",
    ),
    pytest.param("prediction", variant(PREDICTION, timestamp=1741944413.589), id="prediction-epoch-float"),
    pytest.param("prediction", variant(PREDICTION, timestamp=1741944413), id="prediction-epoch-int"),
    pytest.param("prediction", variant(PREDICTION, timestamp="2025-03-14T10:26:53+01:00"), id="prediction-offset-time"),
    pytest.param("prediction", variant(PREDICTION, score=0), id="prediction-score-0"),
    pytest.param("prediction", variant(PREDICTION, score=1), id="prediction-score-1"),
    pytest.param("prediction", variant(PREDICTION, prediction=1), id="prediction-class-int"),
    pytest.param("prediction", variant(PREDICTION, segment={}), id="prediction-empty-segment"),
    pytest.param(
        "prediction", variant(PREDICTION, trace_id="4bf92f35", request={"ip": "10.0.0.1"}), id="prediction-extra-fields"
    ),
    pytest.param(
        "prediction",
        variant(PREDICTION, model_id="Ab0._:-" + "x" * 121, prediction_id="p" * 256, features={"f" * 128: 1.0}),
        id="prediction-at-length-limits",
    ),
    pytest.param("outcome", OUTCOME, id="outcome-full"),
    pytest.param(
        "outcome", {"model_id": "house-price:eu", "prediction_id": "q/77", "label": 398000}, id="outcome-required-only"
    ),
    pytest.param("outcome", variant(OUTCOME, label=False, timestamp=1742032927.0), id="outcome-bool-epoch"),
    pytest.param("outcome", variant(OUTCOME, source="chargeback-feed"), id="outcome-extra-field"),
    pytest.param("alert", ALERT, id="alert-firing"),
    pytest.param(
        "alert",
        variant(ALERT, status="resolved", severity="warning", detected_at="2025-03-14T10:40:00Z"),
        id="alert-resolved",
    ),
    pytest.param(
        "alert",
        variant(
            ALERT,
            alert_id="fraud-scorer:performance:3f0a",
            kind="performance",
            feature=None,
            segment=None,
            detector="ddm",
            statistic=0.78,
            threshold=0.85,
            n=1000,
            model_version="",
            message="fraud-scorer: accuracy fell to 0.78 (bound 0.85) over the last 1000 joined outcomes",
        ),
        id="alert-performance-no-feature-no-segment",
    ),
    pytest.param("deadletter", DEADLETTER, id="deadletter-batch"),
    pytest.param("deadletter", DEADLETTER_BINARY, id="deadletter-base64"),
    pytest.param("deadletter", variant(DEADLETTER, batch_index=0, key=None), id="deadletter-first-of-keyless-batch"),
]


@pytest.mark.parametrize("name, instance", GOOD)
def test_good_examples_validate(name, instance):
    errors = [e.message for e in validator(name).iter_errors(instance)]
    assert not errors, errors


# --- bad examples: one field broken -----------------------------------------

DELETE = object()

BAD = [
    # prediction: identity
    ("prediction", ("model_id",), DELETE, "missing-model_id"),
    ("prediction", ("model_id",), "fraud scorer/v2", "model_id-bad-characters"),
    ("prediction", ("model_id",), "modèle", "model_id-non-ascii"),
    ("prediction", ("model_id",), "", "model_id-empty"),
    ("prediction", ("model_id",), "m" * 129, "model_id-too-long"),
    ("prediction", ("model_id",), 42, "model_id-number"),
    ("prediction", ("prediction_id",), DELETE, "missing-prediction_id"),
    ("prediction", ("prediction_id",), "", "prediction_id-empty"),
    ("prediction", ("prediction_id",), "p" * 257, "prediction_id-too-long"),
    ("prediction", ("prediction_id",), 184467, "prediction_id-number"),
    # prediction: features
    ("prediction", ("features",), DELETE, "missing-features"),
    ("prediction", ("features",), [129.95, "electronics"], "features-list"),
    ("prediction", ("features",), None, "features-null"),
    ("prediction", ("features", "address"), {"city": "Lyon"}, "feature-nested-object"),
    ("prediction", ("features", "basket"), [1, 2], "feature-list"),
    ("prediction", ("features", "f" * 129), 1.0, "feature-name-too-long"),
    # prediction: prediction, score, model_version
    ("prediction", ("prediction",), DELETE, "missing-prediction"),
    ("prediction", ("prediction",), None, "prediction-null"),
    ("prediction", ("prediction",), {"class": "fraud"}, "prediction-object"),
    ("prediction", ("score",), 1.5, "score-above-1"),
    ("prediction", ("score",), -0.01, "score-below-0"),
    ("prediction", ("score",), "0.87", "score-string"),
    ("prediction", ("score",), None, "score-null"),
    ("prediction", ("model_version",), 3, "model_version-number"),
    # prediction: segment
    ("prediction", ("segment", "store_id"), 42, "segment-number-value"),
    ("prediction", ("segment", "tags"), ["a"], "segment-list-value"),
    ("prediction", ("segment",), "eu-west", "segment-string"),
    # prediction: timestamp
    ("prediction", ("timestamp",), "yesterday", "timestamp-words"),
    ("prediction", ("timestamp",), "2025-03-14", "timestamp-date-only"),
    ("prediction", ("timestamp",), "2025-03-14T09:26:53", "timestamp-no-offset"),
    ("prediction", ("timestamp",), "2025-13-40T25:61:00Z", "timestamp-impossible-date"),
    ("prediction", ("timestamp",), "1741944413", "timestamp-epoch-as-string"),
    ("prediction", ("timestamp",), True, "timestamp-boolean"),
    # outcome
    ("outcome", ("model_id",), DELETE, "missing-model_id"),
    ("outcome", ("model_id",), "fraud scorer", "model_id-bad-characters"),
    ("outcome", ("prediction_id",), DELETE, "missing-prediction_id"),
    ("outcome", ("prediction_id",), "", "prediction_id-empty"),
    ("outcome", ("label",), DELETE, "missing-label"),
    ("outcome", ("label",), None, "label-null"),
    ("outcome", ("label",), [1], "label-list"),
    ("outcome", ("timestamp",), "not a date", "timestamp-words"),
    # alert: enums and types
    ("alert", ("kind",), "foo", "kind-foo"),
    ("alert", ("kind",), "drift", "kind-drift"),
    ("alert", ("status",), "open", "status-open"),
    ("alert", ("severity",), "info", "severity-info"),
    ("alert", ("model_id",), "fraud scorer", "model_id-bad-characters"),
    ("alert", ("alert_id",), "", "alert_id-empty"),
    ("alert", ("feature",), 3, "feature-number"),
    ("alert", ("segment",), "eu-west", "segment-string"),
    ("alert", ("segment", "store_id"), 42, "segment-number-value"),
    ("alert", ("statistic",), "0.41", "statistic-string"),
    ("alert", ("threshold",), None, "threshold-null"),
    ("alert", ("n",), 1.5, "n-fraction"),
    ("alert", ("n",), -1, "n-negative"),
    ("alert", ("window_start",), "2025-03-14", "window_start-date-only"),
    ("alert", ("window_end",), 1741944413.589, "window_end-epoch"),
    ("alert", ("detected_at",), "now", "detected_at-words"),
    # dead letter
    ("deadletter", ("partition",), -1, "partition-negative"),
    ("deadletter", ("offset",), "918273", "offset-string"),
    ("deadletter", ("key",), 7, "key-number"),
    ("deadletter", ("payload",), {"model_id": "fraud-scorer"}, "payload-object"),
    ("deadletter", ("payload_encoding",), "hex", "payload_encoding-hex"),
    ("deadletter", ("batch_index",), -1, "batch_index-negative"),
    ("deadletter", ("batch_index",), "2", "batch_index-string"),
    ("deadletter", ("rejected_at",), "later", "rejected_at-words"),
    ("deadletter", ("error",), "", "error-empty"),
    ("deadletter-binary", ("payload",), "not base64!", "payload-not-base64"),
]
# Every field the contract lists for an alert or a dead letter is required.
BAD += [("alert", (field,), DELETE, f"missing-{field}") for field in ALERT]
BAD += [
    ("deadletter", (field,), DELETE, f"missing-{field}")
    for field in ("error", "source_topic", "partition", "offset", "key", "payload", "rejected_at")
]


def broken(base: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(base)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(
    "base, path, value",
    [pytest.param(base, path, value, id=f"{base}-{case}") for base, path, value, case in BAD],
)
def test_bad_examples_are_rejected_at_the_broken_field(base, path, value):
    name = base.split("-")[0]
    errors = list(validator(name).iter_errors(broken(BASES[base], path, value)))
    assert errors, f"{name} accepted {path}={value!r}"
    # Each error is at the broken field or one of its parents (e.g. `required`
    # on the object, `propertyNames` on `features`), never somewhere else.
    for error in errors:
        at = tuple(error.absolute_path)
        assert path[: len(at)] == at, f"error at {at} for a change at {path}: {error.message}"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@pytest.mark.parametrize(
    "instance", [[PREDICTION], "fraud-scorer", None, 42], ids=["array", "string", "null", "number"]
)
def test_non_objects_are_rejected(name, instance):
    # A batch is a JSON array of events; the schemas describe one event each.
    assert not validator(name).is_valid(instance)


# --- the schemas themselves -------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name):
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://driftline.dev/schemas/v1/{name}.schema.json"
    assert schema["title"].strip() and schema["description"].strip()
    assert schema["type"] == "object"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_examples_validate(name):
    schema = load(name)
    assert schema.get("examples"), f"{name} schema has no example"
    for example in schema["examples"]:
        errors = [e.message for e in validator(name).iter_errors(example)]
        assert not errors, errors


def test_date_time_format_is_enforced():
    # jsonschema checks "date-time" only when rfc3339-validator is installed;
    # without it an impossible date would pass the format check silently.
    assert "date-time" in FORMAT_CHECKER.checkers
    assert not FORMAT_CHECKER.conforms("2025-13-40T25:61:00Z", "date-time")
    assert FORMAT_CHECKER.conforms("2025-03-14T09:26:53.589Z", "date-time")


CONTRACT_FIELDS = {
    "prediction": (
        {"model_id", "prediction_id", "features", "prediction"},
        {"model_id", "prediction_id", "features", "prediction", "score", "model_version", "timestamp", "segment"},
    ),
    "outcome": ({"model_id", "prediction_id", "label"}, {"model_id", "prediction_id", "label", "timestamp"}),
    "alert": (set(ALERT), set(ALERT) | {"top_features"}),  # top_features: a v1 addition, data_drift only
    "deadletter": (
        {"error", "source_topic", "partition", "offset", "key", "payload", "rejected_at"},
        {
            "error",
            "source_topic",
            "partition",
            "offset",
            "key",
            "payload",
            "payload_encoding",
            "rejected_at",
            "batch_index",
        },
    ),
}


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_fields_are_the_contract_fields(name):
    required, fields = CONTRACT_FIELDS[name]
    schema = load(name)
    assert set(schema["required"]) == required
    assert set(schema["properties"]) == fields
    # Unknown extra fields are allowed, so producers and later v1 releases can add some.
    assert schema["additionalProperties"] is True


@pytest.mark.parametrize(
    "field, values",
    [
        ("kind", ["data_drift", "prediction_drift", "concept_drift", "performance", "data_quality"]),
        ("status", ["firing", "resolved"]),
        ("severity", ["warning", "critical"]),
    ],
)
def test_alert_enums(field, values):
    assert load("alert")["properties"][field]["enum"] == values


@pytest.mark.parametrize(
    "definition, names",
    [
        ("model_id", ["prediction", "outcome", "alert"]),
        ("prediction_id", ["prediction", "outcome"]),
        ("timestamp", ["prediction", "outcome"]),
        ("rfc3339", SCHEMA_NAMES),
    ],
)
def test_shared_definitions_agree(definition, names):
    """Each schema stands alone (no cross-file $ref), so the copies must match."""
    copies = {name: load(name)["$defs"][definition] for name in names}
    first = copies[names[0]]
    for name, copy_ in copies.items():
        assert copy_ == first, f"$defs/{definition} in {name} differs from {names[0]}"


def test_model_id_definition():
    model_id = load("prediction")["$defs"]["model_id"]
    assert model_id["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert (model_id["minLength"], model_id["maxLength"]) == (1, 128)
