"""Integration tests: real clients against the embedded Tansu broker and redis-server."""
from __future__ import annotations

import time
from pathlib import Path

import redis
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from streams.embedded import EmbeddedBroker, EmbeddedRedis

# Tansu 0.6.0 completes a group join after about half the session timeout: keep it short.
GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def test_kafka_python_round_trip(broker: EmbeddedBroker, unique: str) -> None:
    topic = f"embedded-kp-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(6)}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for key, value in sent.items():
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=f"g-{unique}",
                             auto_offset_reset="earliest", **GROUP_TIMEOUTS)
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    try:
        deadline = time.monotonic() + 12
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    received[record.key] = record.value
                    partitions.add(record.partition)
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        consumer.close()
    assert received == sent
    assert partitions <= {0, 1, 2}


def test_confluent_kafka_round_trip(broker: EmbeddedBroker, unique: str) -> None:
    topic = f"embedded-ck-{unique}"
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    sent = [f"message-{i}".encode() for i in range(5)]
    for value in sent:
        producer.produce(topic, value=value, key=value[-1:])
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{unique}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 1000})
    received: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 12
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            if error is None:
                received.append(message.value())
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)


def test_redis_set_get(redis_client: redis.Redis, unique: str) -> None:
    key = f"test:{unique}:greeting"
    assert redis_client.set(key, "hello", ex=60)
    assert redis_client.get(key) == "hello"


def test_appendonly_redis_survives_restart(tmp_path: Path, unique: str) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "data", appendonly=True, log_path=tmp_path / "redis.log")
    with server:
        url, port = server.url, server.port
        with redis.Redis.from_url(server.url, decode_responses=True) as client:
            client.set(f"aof:{unique}", "kept")
            client.hset(f"aof:{unique}:h", mapping={"a": "1", "b": "2"})
        server.restart()
        assert server.alive and (server.url, server.port) == (url, port)
        with redis.Redis.from_url(server.url, decode_responses=True) as client:
            assert client.get(f"aof:{unique}") == "kept"
            assert client.hgetall(f"aof:{unique}:h") == {"a": "1", "b": "2"}
    assert not server.alive
