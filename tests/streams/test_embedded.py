"""Integration tests: real clients against the embedded Tansu broker and redis-server."""

from __future__ import annotations

from pathlib import Path

import redis
from confluent_kafka import Consumer, KafkaError
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from scripts.harness import kafka_producer, wait_for
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
    with kafka_producer(broker.bootstrap) as producer:
        for key, value in sent.items():
            producer.send(topic, value, key=key)
        assert producer.flush(10) == 0 and producer.failed == 0
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"g-{unique}",
        auto_offset_reset="earliest",
        **GROUP_TIMEOUTS,
    )
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()

    def poll() -> bool | None:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                received[record.key] = record.value
                partitions.add(record.partition)
        return True if len(received) >= len(sent) else None

    try:
        wait_for(poll, 12, "records back", every_s=0)
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        consumer.close()
    assert received == sent
    assert partitions <= {0, 1, 2}


def test_confluent_kafka_round_trip(broker: EmbeddedBroker, unique: str) -> None:
    topic = f"embedded-ck-{unique}"
    sent = [f"message-{i}".encode() for i in range(5)]
    with kafka_producer(broker.bootstrap, "confluent") as producer:
        for value in sent:
            producer.send(topic, value, key=value[-1:])
        assert producer.flush(10) == 0 and producer.failed == 0
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"g-{unique}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    received: list[bytes] = []

    def poll() -> bool | None:
        message = consumer.poll(0.5)
        if message is not None:
            error = message.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error  # noqa: SLF001 (librdkafka names it so)
            if error is None:
                received.append(message.value())
        return True if len(received) >= len(sent) else None

    try:
        consumer.subscribe([topic])
        wait_for(poll, 12, "messages back", every_s=0)
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
