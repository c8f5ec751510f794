"""Hostile input never escapes validation: every record ends as events or dead letters."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import Invalid
from streams.routing import FORWARD_DECODER, RawRecord, route

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["model_id", "prediction_id", "features", "prediction", "score", "label", "timestamp", "segment", "model_version"]
)
EVENTISH = st.dictionaries(FIELDS, JSON_VALUES, max_size=9) | st.fixed_dictionaries(
    {
        "model_id": st.text(max_size=140) | JSON_VALUES,
        "prediction_id": st.text(max_size=300) | JSON_VALUES,
        "features": st.dictionaries(st.text(max_size=140), JSON_VALUES, max_size=5) | JSON_VALUES,
        "prediction": JSON_VALUES,
        "score": JSON_VALUES,
        "timestamp": JSON_VALUES,
    }
)
PAYLOADS = (
    st.binary(max_size=200)
    | EVENTISH.map(lambda e: json.dumps(e, allow_nan=True).encode())
    | st.lists(EVENTISH, max_size=5).map(lambda b: json.dumps(b, allow_nan=True).encode())
    | st.sampled_from(
        [
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1e400",
            b"9" * 400,
            b"[" * 5000 + b"]" * 5000,
            b'{"model_id": "m", "prediction_id": "p", "features": {"x": NaN}, "prediction": 1}',
            b'{"model_id": "m", "prediction_id": "p", "features": {"x": 1e999}, "prediction": 1}',
            b"\xff\xfe\x00",
            b"",
            b"null",
            b"[]",
        ]
    )
)


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(PAYLOADS, min_size=1, max_size=6), keys=st.lists(st.none() | st.binary(max_size=8)))
def test_every_record_becomes_events_or_dead_letters(payloads: list[bytes], keys: list[bytes | None]) -> None:
    records = [
        RawRecord(
            "driftline.predictions" if i % 2 else "driftline.outcomes",
            0,
            i,
            keys[i] if i < len(keys) else None,
            value,
            1.0,
        )
        for i, value in enumerate(payloads)
    ]
    batch = route(records, "driftline.predictions", 8, now=0.0)
    valid = [e for events in batch.events.values() for e in events if not isinstance(e.event, Invalid)]
    for letter in batch.dead_letters:
        doc = orjson.loads(letter.to_json())
        assert "\n" not in doc["error"] and doc["error"].split(":")[0]
    for partition, body in batch.messages():  # forwardable as it is, and read back the same
        assert FORWARD_DECODER.decode(body).events == batch.events[partition, FORWARD_DECODER.decode(body).source]
    rejected_records = {letter.record.offset for letter in batch.dead_letters}
    accepted_records = {e.offset for e in valid}
    assert rejected_records | accepted_records >= {r.offset for r in records if r.value not in (b"[]",)}
