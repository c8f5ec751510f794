"""Creates driftline's topics with the configured partition count, and checks them."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.errors import ConfigurationError
from streams.security import kafka_python_config
from streams.settings import Settings

log = logging.getLogger(__name__)


def topic_names(settings: Settings) -> list[str]:
    return [
        settings.topic_predictions,
        settings.topic_outcomes,
        settings.topic_alerts,
        settings.topic_deadletter,
        settings.topic_events,
    ]


def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> int:
    """Create missing topics; return the partition count of the internal events topic.

    Routing uses that count, so an events topic created earlier with another
    count keeps working. The broker may still be starting: retry until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _ensure(settings)
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ConfigurationError(f"Kafka at {settings.kafka_bootstrap} is not reachable: {exc}") from exc
            log.warning("waiting for Kafka at %s: %s", settings.kafka_bootstrap, exc)
            time.sleep(1.0)


def partition_counts(settings: Settings) -> dict[str, int]:
    """The partition count of each of driftline's topics (0 for a topic that does not exist)."""
    admin = KafkaAdminClient(client_id="driftline-admin", **kafka_python_config(settings))
    try:
        described = admin.describe_topics(topic_names(settings))
        return {d.get("topic", d.get("name")): len(d.get("partitions") or []) for d in described}
    finally:
        admin.close()


def _ensure(settings: Settings) -> int:
    admin = KafkaAdminClient(client_id="driftline-admin", **kafka_python_config(settings))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, settings.partitions, settings.replication_factor)
            for name in topic_names(settings)
            if name not in existing
        ]
        for topic in missing:
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass  # another worker created it meanwhile
        for _ in range(50):
            described = admin.describe_topics([settings.topic_events])
            partitions = len(described[0].get("partitions") or [])
            if partitions:
                return partitions
            time.sleep(0.1)
        raise ConfigurationError(f"topic {settings.topic_events} has no partitions")
    finally:
        admin.close()
