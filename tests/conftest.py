"""Session-wide real servers: one Tansu broker and one Redis, started on first use."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from streams.embedded import EmbeddedBroker, EmbeddedRedis


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The session's Kafka-compatible broker (Tansu, in-memory)."""
    logs = tmp_path_factory.mktemp("servers")
    with EmbeddedBroker(log_path=logs / "tansu.log") as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """The session's Redis (no persistence)."""
    root = tmp_path_factory.mktemp("redis")
    with EmbeddedRedis(data_dir=root / "data", log_path=root / "redis.log") as server:
        yield server


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the session Redis that returns ``str``."""
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A short string unique to this test, for topic names, group ids and key prefixes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def driftline_env(broker: EmbeddedBroker, redis_server: EmbeddedRedis, unique: str) -> dict[str, str]:
    """``DRIFTLINE_*`` settings for a worker of this test alone: own topics, group and key prefix.

    Timeouts are short because Tansu takes about half the session timeout to form a group.
    """
    return {
        "DRIFTLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "DRIFTLINE_REDIS_URL": redis_server.url,
        "DRIFTLINE_REDIS_PREFIX": f"t{unique}:",
        "DRIFTLINE_APP_ID": f"driftline-{unique}",
        "DRIFTLINE_TOPIC_PREDICTIONS": f"{unique}.predictions",
        "DRIFTLINE_TOPIC_OUTCOMES": f"{unique}.outcomes",
        "DRIFTLINE_TOPIC_ALERTS": f"{unique}.alerts",
        "DRIFTLINE_TOPIC_DEADLETTER": f"{unique}.deadletter",
        "DRIFTLINE_TOPIC_EVENTS": f"{unique}.events",
        "DRIFTLINE_PARTITIONS": "4",
        "DRIFTLINE_SESSION_TIMEOUT_S": "6",
        "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
        "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
        "DRIFTLINE_LOG_LEVEL": "info",
    }
