"""Routing: which task owns a model, the forwarded-events format, and dead letters.

A model belongs to partition ``partition_for(model_id, n)`` of the internal
events topic: Kafka's default partitioner (murmur2) on the UTF-8 model id,
whatever key or partitioner the producer used. An event read from the input
partition of its own task is applied there; any other is forwarded, once, to
the events partition of its task, tagged with its source (input topic and
partition), offset and index in that message, so the owner skips what it has
applied already after an ingest crash, however the events were split.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec
import orjson
from kafka.partitioner.default import murmur2

from detectors import rfc3339
from streams.events import Decoded, Invalid, OutcomeEvent, PredictionEvent, decode_outcomes, decode_predictions

__all__ = ["DeadLetter", "Forwarded", "ForwardedBatch", "Partitioner", "RawRecord", "Routed", "partition_for", "route"]

MAX_MESSAGE_BYTES = 256 * 1024  # well under Kafka's default 1 MB message limit


def partition_for(model_id: str, partitions: int) -> int:
    """The partition that owns a model: Kafka's default partitioner on the UTF-8 model id.

    >>> partition_for("churn", 8) == partition_for("churn", 8)
    True
    """
    partition: int = (murmur2(model_id.encode()) & 0x7FFFFFFF) % partitions  # kafka-python is untyped
    return partition


class Partitioner:
    """:func:`partition_for` with a bounded cache (murmur2 in Python costs microseconds).

    >>> Partitioner(8)("churn") == partition_for("churn", 8)
    True
    """

    def __init__(self, partitions: int, size: int = 200_000) -> None:
        self.partitions = partitions
        self.size = size
        self.cache: dict[str, int] = {}

    def __call__(self, model_id: str) -> int:
        found = self.cache.get(model_id)
        if found is None:
            if len(self.cache) >= self.size:
                self.cache.clear()
            found = self.cache[model_id] = partition_for(model_id, self.partitions)
        return found


class Forwarded(msgspec.Struct, array_like=True, gc=False):
    """One event forwarded to its task: where it was read, and the event."""

    offset: int
    index: int
    event: PredictionEvent | OutcomeEvent | Invalid


class ForwardedBatch(msgspec.Struct, array_like=True, gc=False):
    """An internal message: events of one source (``topic/partition``), in source order."""

    source: str
    events: list[Forwarded]


FORWARD_ENCODER = msgspec.json.Encoder()
FORWARD_DECODER = msgspec.json.Decoder(ForwardedBatch)


def forwarded_messages(source: str, events: list[Forwarded], max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """Internal messages for ``events`` of one source, each under ``max_bytes``.

    >>> e = Forwarded(3, 0, Invalid("churn"))
    >>> FORWARD_DECODER.decode(forwarded_messages("in/0", [e])[0]).events[0].event.model_id
    'churn'
    """
    encoded = [FORWARD_ENCODER.encode(e) for e in events]
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    head = b"[" + FORWARD_ENCODER.encode(source) + b",["
    for item in encoded:
        if chunk and size + len(item) > max_bytes:
            out.append(head + b",".join(chunk) + b"]]")
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        out.append(head + b",".join(chunk) + b"]]")
    return out


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record from an input topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # the record's timestamp, Unix seconds


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input and why (contract v1 dead-letter format)."""

    record: RawRecord
    error: str
    batch_index: int | None
    payload: bytes | None
    rejected_at: float

    def to_json(self) -> bytes:
        payload = self.payload or b""
        try:
            body: dict[str, object] = {"payload": payload.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}
        record = self.record
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        doc = {
            "error": self.error,
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": key,
            **body,
            "rejected_at": rfc3339(self.rejected_at),
        }
        if self.batch_index is not None:
            doc["batch_index"] = self.batch_index
        return orjson.dumps(doc)


@dataclass
class Routed:
    """What input records become: events by owning partition and source, in source order, and dead letters.

    Each event carries its source offset and its index in that record: the
    owner skips what it has applied already, so re-reading or re-forwarding
    after a crash never counts an event twice, however the events were split.
    """

    events: dict[tuple[int, str], list[Forwarded]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add(
        self,
        record: RawRecord,
        decoded: Decoded[PredictionEvent] | Decoded[OutcomeEvent],
        route: Partitioner,
        now: float,
    ) -> None:
        """Route the valid events and the rejects of one decoded record."""
        source = f"{record.topic}/{record.partition}"
        items: list[tuple[int, PredictionEvent | OutcomeEvent | Invalid]] = list(
            zip(decoded.indices, decoded.events, strict=True)
        )
        for reject in decoded.rejects:
            self.dead_letters.append(DeadLetter(record, reject.error, reject.index, reject.payload, now))
            if reject.model_id is not None:  # it counts in its model's ``invalid``
                items.append((reject.index or 0, Invalid(reject.model_id)))
        if decoded.rejects:
            items.sort(key=lambda item: item[0])  # in the record's order
        offset, model_id, owned = record.offset, None, []
        for index, event in items:
            if event.model_id != model_id:  # a record's events are mostly one model's: routed once per run
                model_id = event.model_id
                owned = self.events.setdefault((route(model_id), source), [])
            owned.append(Forwarded(offset, index, event))

    def messages(self, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[tuple[int, bytes]]:
        """Internal messages per owning partition, events in source order, each under ``max_bytes``."""
        for (partition, source), events in self.events.items():
            for value in forwarded_messages(source, events, max_bytes):
                yield partition, value


def route(records: Iterable[RawRecord], predictions_topic: str, partitions: int | Partitioner, now: float) -> Routed:
    """Decode and validate every event of every record, and route it by ``model_id``.

    >>> r = route([RawRecord("driftline.predictions", 0, 7, None, b'{"model_id": "m", "prediction_id": "1", '
    ...                      b'"features": {}, "prediction": 1}', 5.0)], "driftline.predictions", 8, now=6.0)
    >>> [(owner, source, [f.offset for f in events]) for (owner, source), events in r.events.items()]
    [(0, 'driftline.predictions/0', [7])]
    """
    partitioner = partitions if isinstance(partitions, Partitioner) else Partitioner(partitions)
    routed = Routed()
    for record in records:
        decode = decode_predictions if record.topic == predictions_topic else decode_outcomes
        routed.add(record, decode(record.value, record.timestamp), partitioner, now)
    return routed
