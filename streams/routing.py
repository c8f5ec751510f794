"""Ingest: decode raw input messages, validate each event, route it to its model's partition."""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
from kafka.partitioner.default import murmur2

from detectors import rfc3339
from streams.errors import InvalidEvent
from streams.events import OutcomeEvent, PredictionEvent, decode_message


MAX_MESSAGE_BYTES = 256 * 1024  # well under Kafka's default 1 MB message limit


def partition_for(model_id: str, partitions: int) -> int:
    """The partition that owns a model: Kafka's default partitioner on the UTF-8 model id.

    >>> partition_for("churn", 8) == partition_for("churn", 8)
    True
    """
    return (murmur2(model_id.encode()) & 0x7FFFFFFF) % partitions


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
            body: dict[str, Any] = {"payload": payload.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}
        record = self.record
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        doc = {
            "error": self.error, "source_topic": record.topic, "partition": record.partition,
            "offset": record.offset, "key": key, **body, "rejected_at": rfc3339(self.rejected_at),
        }
        if self.batch_index is not None:
            doc["batch_index"] = self.batch_index
        return orjson.dumps(doc)


@dataclass
class RoutedBatch:
    """What one batch of raw records becomes: events per owning partition, and rejects.

    Events are grouped by (owning partition, source topic, source partition), and
    each carries its source offset ``o`` and its index ``i`` in that record: the
    owner skips what it has applied already, so re-ingesting after a crash never
    counts an event twice, however the events were split into messages.
    """

    events: dict[tuple[int, str, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def messages(self, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterable[tuple[int, bytes]]:
        """Internal messages per group, events in source order, each under ``max_bytes``."""
        for (partition, topic, source_partition), events in self.events.items():
            source = f"{topic}/{source_partition}"
            chunk: list[bytes] = []
            size = 0
            for event in events:
                encoded = orjson.dumps(event)
                if chunk and size + len(encoded) > max_bytes:
                    yield partition, _internal_message(source, chunk)
                    chunk, size = [], 0
                chunk.append(encoded)
                size += len(encoded) + 1
            if chunk:
                yield partition, _internal_message(source, chunk)


def _internal_message(source: str, events: list[bytes]) -> bytes:
    return b'{"src":' + orjson.dumps(source) + b',"events":[' + b",".join(events) + b"]}"


def route(records: Iterable[RawRecord], predictions_topic: str, partitions: int, now: float) -> RoutedBatch:
    """Validate every event of every record and route it by ``model_id``."""
    batch = RoutedBatch()
    for record in records:
        try:
            items = decode_message(record.value)
        except InvalidEvent as exc:
            batch.dead_letters.append(DeadLetter(record, str(exc), None, record.value, now))
            continue
        is_batch = len(items) != 1 or (record.value or b"").lstrip()[:1] == b"["
        parse = PredictionEvent.parse if record.topic == predictions_topic else OutcomeEvent.parse
        for index, item in enumerate(items):
            try:
                wire = parse(item, record.timestamp).to_wire()
            except InvalidEvent as exc:
                payload = orjson.dumps(item) if is_batch else record.value
                batch.dead_letters.append(DeadLetter(record, str(exc), index if is_batch else None, payload, now))
                if exc.model_id is None:
                    continue
                wire = {"type": "invalid", "model_id": exc.model_id}
            wire["o"] = record.offset
            wire["i"] = index
            batch.events[partition_for(wire["model_id"], partitions), record.topic, record.partition].append(wire)
    return batch
