"""route(): raw input records to validated events on the owning partition, and contract dead letters."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner

from detectors import rfc3339
from streams.routing import FORWARD_DECODER, DeadLetter, Forwarded, RawRecord, partition_for, route

PREDICTIONS = "driftline.predictions"
OUTCOMES = "driftline.outcomes"
PARTITIONS = 8
NOW = 1_767_225_600.123
DEAD_LETTER_FIELDS = {"error", "source_topic", "partition", "offset", "key", "payload", "rejected_at"}


def pred(model_id: str, prediction_id: str, **extra: Any) -> dict[str, Any]:
    return {"model_id": model_id, "prediction_id": prediction_id, "features": {"x": 1.0}, "prediction": 1, **extra}


def record(
    value: Any, key: bytes | None = None, topic: str = PREDICTIONS, offset: int = 42, timestamp: float = 1_767_000_000.0
) -> RawRecord:
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return RawRecord(topic, 3, offset, key, raw, timestamp)


KINDS = {"PredictionEvent": "prediction", "OutcomeEvent": "outcome", "Invalid": "invalid"}


def flat(item: Forwarded) -> dict[str, Any]:
    """A routed event as a plain dict: its kind, fields, source offset ``o`` and index ``i``."""
    return {
        "type": KINDS[type(item.event).__name__],
        **msgspec.structs.asdict(item.event),
        "o": item.offset,
        "i": item.index,
    }


def all_events(batch: Any) -> list[tuple[int, dict[str, Any]]]:
    """(owning partition, event) for every routed event."""
    return [(key[0], flat(e)) for key, events in batch.events.items() for e in events]


def events_on(batch: Any, partition: int) -> list[dict[str, Any]]:
    return [flat(e) for key, events in batch.events.items() if key[0] == partition for e in events]


def dead_letter_doc(letter: DeadLetter) -> dict[str, Any]:
    return orjson.loads(letter.to_json())


# --- partitioning ---------------------------------------------------------------------------------


class _Cluster:
    """Just enough ClusterMetadata for kafka-python's DefaultPartitioner."""

    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def kafka_python_partition(key: bytes, n: int) -> int:
    """The partition kafka-python's producer picks for ``key`` (both its 2.x and 3.x partitioner APIs)."""
    if hasattr(DefaultPartitioner, "partition"):  # kafka-python >= 3: a Partitioner instance
        return DefaultPartitioner().partition("t", key, key, None, None, _Cluster(n))
    return DefaultPartitioner(key, list(range(n)), list(range(n)))  # kafka-python 2.x: a callable class


model_ids = st.text(alphabet="ABCXYZabcxyz0123456789._:-", min_size=1, max_size=128)


@settings(max_examples=100, deadline=None)
@given(model_ids, st.integers(min_value=1, max_value=128))
def test_partition_for_matches_kafka_pythons_default_partitioner(model_id: str, n: int) -> None:
    assert partition_for(model_id, n) == kafka_python_partition(model_id.encode(), n)
    assert 0 <= partition_for(model_id, n) < n


# Kafka's Java client (org.apache.kafka.common.utils.UtilsTest#testMurmur2): signed murmur2 of the UTF-8 bytes.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize("model_id,murmur", JAVA_MURMUR2.items())
@pytest.mark.parametrize("n", [1, 3, 8, 12, 100, 1000])
def test_partition_for_matches_the_java_default_partitioner(model_id: str, murmur: int, n: int) -> None:
    # Java: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions
    assert partition_for(model_id, n) == (murmur & 0x7FFFFFFF) % n


def test_partition_for_is_stable() -> None:
    assert [partition_for(m, 8) for m in ("churn", "fraud", "ltv")] == [
        partition_for(m, 8) for m in ("churn", "fraud", "ltv")
    ]
    assert len({partition_for(f"model-{i}", 8) for i in range(100)}) == 8  # spreads models over partitions


# --- routing --------------------------------------------------------------------------------------


def test_a_mixed_batch_rejects_only_its_bad_event() -> None:
    bad = {"model_id": "fraud", "prediction_id": "p3", "prediction": 1}  # no features
    batch_value = [pred("churn", "p1"), pred("fraud", "p2"), bad, pred("ltv", "p4"), pred("churn", "p5")]
    batch = route([record(batch_value, key=b"churn")], PREDICTIONS, PARTITIONS, NOW)

    (letter,) = batch.dead_letters
    doc = dead_letter_doc(letter)
    assert doc["batch_index"] == 2
    assert doc["error"].startswith("features: ")
    assert orjson.loads(doc["payload"]) == bad  # the rejected event itself

    routed = all_events(batch)
    assert sorted((e["model_id"], e.get("prediction_id", "")) for _, e in routed) == [
        ("churn", "p1"),
        ("churn", "p5"),
        ("fraud", ""),
        ("fraud", "p2"),
        ("ltv", "p4"),
    ]
    for partition, event in routed:
        assert partition == partition_for(event["model_id"], PARTITIONS)
    assert {key[1] for key in batch.events} == {f"{PREDICTIONS}/3"}  # grouped by source topic and partition
    assert all(e["o"] == 42 for _, e in routed)  # each event carries its source offset
    fraud = events_on(batch, partition_for("fraud", PARTITIONS))
    assert [e for e in fraud if e["model_id"] == "fraud"] == [
        {
            **pred("fraud", "p2"),
            "type": "prediction",
            "score": None,
            "model_version": "",
            "timestamp": 1_767_000_000.0,
            "segment": None,
            "o": 42,
            "i": 1,
        },
        {"type": "invalid", "model_id": "fraud", "o": 42, "i": 2},
    ]
    churn = [
        e["prediction_id"] for e in events_on(batch, partition_for("churn", PARTITIONS)) if e["model_id"] == "churn"
    ]
    assert churn == ["p1", "p5"]  # order kept within a model


@pytest.mark.parametrize("key", [None, b"", b"someone-else", b"\xff\xfe"], ids=["unkeyed", "empty", "wrong", "binary"])
def test_records_route_by_model_id_whatever_their_key(key: bytes | None) -> None:
    batch = route([record(pred("churn", "p1"), key=key)], PREDICTIONS, PARTITIONS, NOW)
    assert batch.dead_letters == []
    ((partition, event),) = all_events(batch)
    assert partition == partition_for("churn", PARTITIONS)
    assert event["prediction_id"] == "p1"


def test_outcomes_are_parsed_as_outcomes() -> None:
    value = {"model_id": "churn", "prediction_id": "p1", "label": True}
    batch = route([record(value, topic=OUTCOMES, timestamp=5.0)], PREDICTIONS, PARTITIONS, NOW)
    assert all_events(batch) == [
        (
            partition_for("churn", PARTITIONS),
            {
                "type": "outcome",
                "model_id": "churn",
                "prediction_id": "p1",
                "label": True,
                "timestamp": 5.0,
                "o": 42,
                "i": 0,
            },
        )
    ]
    # an outcome-shaped event on the predictions topic lacks features and a prediction
    rejected = route([record(value)], PREDICTIONS, PARTITIONS, NOW)
    assert rejected.dead_letters[0].error.startswith("features: ")


def test_an_invalid_event_of_a_known_model_is_counted_for_that_model() -> None:
    value = pred("churn", "p1", score=3)
    batch = route([record(value, key=b"churn")], PREDICTIONS, PARTITIONS, NOW)
    assert all_events(batch) == [
        (partition_for("churn", PARTITIONS), {"type": "invalid", "model_id": "churn", "o": 42, "i": 0})
    ]
    doc = dead_letter_doc(batch.dead_letters[0])
    assert set(doc) == DEAD_LETTER_FIELDS  # a single event: no batch_index
    assert doc["error"] == "score: must be a number in [0, 1], got 3"
    assert doc["payload"] == orjson.dumps(value).decode()  # the original bytes


@pytest.mark.parametrize(
    "value",
    [
        {"prediction_id": "p1", "features": {}, "prediction": 1},
        {"model_id": "bad id", "prediction_id": "p1", "features": {}, "prediction": 1},
    ],
    ids=["no-model-id", "bad-model-id"],
)
def test_an_event_without_a_valid_model_id_is_only_dead_lettered(value: dict[str, Any]) -> None:
    batch = route([record(value)], PREDICTIONS, PARTITIONS, NOW)
    assert all_events(batch) == []
    assert dead_letter_doc(batch.dead_letters[0])["error"].startswith("model_id: ")


def test_dead_letter_fields_exactly_per_contract() -> None:
    raw = b'{"model_id": "churn", "prediction_id": 5}'
    batch = route([RawRecord(PREDICTIONS, 6, 1234, b"churn", raw, 1.0)], PREDICTIONS, PARTITIONS, NOW)
    doc = dead_letter_doc(batch.dead_letters[0])
    assert set(doc) == DEAD_LETTER_FIELDS
    assert doc["error"].startswith("prediction_id: ")
    assert (doc["source_topic"], doc["partition"], doc["offset"], doc["key"]) == (PREDICTIONS, 6, 1234, "churn")
    assert doc["payload"] == raw.decode()
    assert doc["rejected_at"] == rfc3339(NOW) == "2026-01-01T00:00:00.123Z"
    assert datetime.fromisoformat(doc["rejected_at"].replace("Z", "+00:00")).timestamp() == pytest.approx(NOW, abs=1e-3)


def test_batch_dead_letters_carry_batch_index_and_their_own_event() -> None:
    value = [pred("a", "1"), 17, pred("b", "2", timestamp="soon"), pred("c", "3")]
    batch = route([record(value, key=None, offset=9)], PREDICTIONS, PARTITIONS, NOW)
    docs = [dead_letter_doc(d) for d in batch.dead_letters]
    assert [d["batch_index"] for d in docs] == [1, 3 - 1]
    assert [set(d) for d in docs] == [DEAD_LETTER_FIELDS | {"batch_index"}] * 2
    assert docs[0]["error"].startswith("event: ") and docs[0]["payload"] == "17"
    assert docs[1]["error"].startswith("timestamp: ")
    assert all(d["key"] is None and d["offset"] == 9 for d in docs)
    assert sorted(e["model_id"] for _, e in all_events(batch)) == ["a", "b", "c"]  # b as invalid


def test_a_one_element_array_is_still_a_batch() -> None:
    batch = route([record(b' [{"model_id": "m"}]')], PREDICTIONS, PARTITIONS, NOW)
    assert dead_letter_doc(batch.dead_letters[0])["batch_index"] == 0


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b'{"model_id": "caf\xe9"}', b"\x80"])
def test_a_payload_that_is_not_utf8_is_dead_lettered_as_base64(raw: bytes) -> None:
    batch = route([record(raw, key=b"k")], PREDICTIONS, PARTITIONS, NOW)
    doc = dead_letter_doc(batch.dead_letters[0])
    assert set(doc) == DEAD_LETTER_FIELDS | {"payload_encoding"}
    assert doc["payload_encoding"] == "base64"
    assert base64.b64decode(doc["payload"]) == raw
    assert doc["error"].startswith("message: ")
    assert all_events(batch) == []


@pytest.mark.parametrize(
    "raw,error",
    [
        (b"not json", "message: not valid JSON"),
        (b"42", "message: must be a JSON object or an array of objects, got number"),
        (b"null", "message: must be a JSON object or an array of objects, got null"),
        (None, "message: empty value (tombstone)"),
    ],
)
def test_undecodable_messages(raw: bytes | None, error: str) -> None:
    batch = route([record(raw, key=b"churn")], PREDICTIONS, PARTITIONS, NOW)
    doc = dead_letter_doc(batch.dead_letters[0])
    assert doc["error"].startswith(error)
    assert set(doc) == DEAD_LETTER_FIELDS
    assert doc["payload"] == (raw or b"").decode()
    assert doc["key"] == "churn"


def test_the_record_timestamp_fills_in_a_missing_event_time() -> None:
    batch = route(
        [record(pred("m", "1"), timestamp=123.5), record(pred("m", "2", timestamp=7))], PREDICTIONS, PARTITIONS, NOW
    )
    assert [e["timestamp"] for _, e in all_events(batch)] == [123.5, 7.0]


def test_messages_carry_each_partitions_events_in_order() -> None:
    records = [record([pred(f"model-{i % 5}", str(i)) for i in range(20)], offset=1)]
    batch = route(records, PREDICTIONS, PARTITIONS, NOW)
    seen = 0
    for partition, body in batch.messages():
        message = FORWARD_DECODER.decode(body)
        events = message.events
        assert message.source == f"{PREDICTIONS}/3"
        assert events == batch.events[partition, f"{PREDICTIONS}/3"]
        assert all(partition_for(e.event.model_id, PARTITIONS) == partition for e in events)
        ids = [int(e.event.prediction_id) for e in events]
        assert ids == sorted(ids)
        seen += len(events)
    assert seen == 20


def test_several_records_each_get_their_own_dead_letters() -> None:
    records = [record(b"{", offset=1), record(pred("m", "ok"), offset=2), record([1, 2], offset=3)]
    batch = route(records, PREDICTIONS, PARTITIONS, NOW)
    assert [(d.record.offset, d.batch_index) for d in batch.dead_letters] == [(1, None), (3, 0), (3, 1)]
    assert [e["o"] for _, e in all_events(batch)] == [2]


def test_events_are_grouped_by_source_topic_and_partition() -> None:
    owner = partition_for("churn", PARTITIONS)
    records = [
        RawRecord(PREDICTIONS, 0, 5, None, orjson.dumps(pred("churn", "a")), 1.0),
        RawRecord(PREDICTIONS, 1, 7, None, orjson.dumps(pred("churn", "b")), 1.0),
        RawRecord(OUTCOMES, 0, 9, None, orjson.dumps({"model_id": "churn", "prediction_id": "a", "label": 1}), 1.0),
    ]
    batch = route(records, PREDICTIONS, PARTITIONS, NOW)
    assert {key: [e.offset for e in events] for key, events in batch.events.items()} == {
        (owner, f"{PREDICTIONS}/0"): [5],
        (owner, f"{PREDICTIONS}/1"): [7],
        (owner, f"{OUTCOMES}/0"): [9],
    }
    sources = sorted(FORWARD_DECODER.decode(body).source for partition, body in batch.messages() if partition == owner)
    assert sources == [f"{OUTCOMES}/0", f"{PREDICTIONS}/0", f"{PREDICTIONS}/1"]


def test_big_batches_split_into_bounded_messages_that_still_dedupe() -> None:
    from streams.settings import Settings
    from streams.tasks import TaskState

    events = [
        {"model_id": "m", "prediction_id": f"p{i}", "features": {"x": float(i), "pad": "z" * 200}, "prediction": 1}
        for i in range(2000)
    ]
    record = RawRecord(PREDICTIONS, 0, 7, b"m", json.dumps(events).encode(), 1.0)
    messages = list(route([record], PREDICTIONS, 1, now=0.0).messages(max_bytes=64 * 1024))
    assert len(messages) > 4 and all(len(value) <= 64 * 1024 + 1024 for _, value in messages)
    task = TaskState(0, Settings())
    for _, value in messages + messages:  # the second time: forwarded again after a crash
        batch = FORWARD_DECODER.decode(value)
        for item in batch.events:
            if not task.seen(batch.source, item.offset, item.index):
                task.arrive(item.event)
    assert task.models["m"].predictions == 2000


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["churn", "fraud", "ltv", "spam"]), st.booleans()), max_size=30))
def test_every_event_of_a_record_goes_to_its_models_owner_in_record_order(events: list[tuple[str, bool]]) -> None:
    docs = [pred(m, f"p{i}") if ok else pred(m, f"p{i}", score=7) for i, (m, ok) in enumerate(events)]
    batch = route([record(docs)], PREDICTIONS, PARTITIONS, NOW)
    for partition in range(PARTITIONS):
        here = events_on(batch, partition)
        owned = [i for i, (m, _) in enumerate(events) if partition_for(m, PARTITIONS) == partition]
        assert [e["i"] for e in here] == owned  # each valid event, and each invalid one as its model's count
        assert [e["type"] for e in here] == ["prediction" if events[i][1] else "invalid" for i in owned]
    assert len(batch.dead_letters) == sum(not ok for _, ok in events)
