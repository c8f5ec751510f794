"""Session-wide real servers: one Tansu broker and one Redis, started on first use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from scripts.harness import run_env
from streams.embedded import EmbeddedBroker, EmbeddedRedis
from streams.embedded_ops import EmbeddedRedisCluster


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedisCluster]:
    """A real 3-master Redis Cluster from the same redis-server binary, started on first use."""
    root = tmp_path_factory.mktemp("redis-cluster")
    with EmbeddedRedisCluster(data_dir=root / "data", log_dir=root) as cluster:
        yield cluster


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
    """``DRIFTLINE_*`` settings for a worker of this test alone: own topics, group and key prefix, 4 partitions.

    Group timeouts are short because Tansu takes about half the session timeout to form a group.
    """
    return run_env(broker.bootstrap, redis_server.url, unique, partitions=4)
