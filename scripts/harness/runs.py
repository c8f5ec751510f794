"""Run settings: the ``DRIFTLINE_*`` variables of a run of its own, and the settings a worker reads from them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from streams.settings import Settings

# Tansu 0.6.0 completes a group join after about half the session timeout: keep it short.
GROUP_TIMING = {
    "DRIFTLINE_SESSION_TIMEOUT_S": "6",
    "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
    "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
}


def run_env(
    bootstrap: str, redis_url: str, name: str | None = None, prefix: str | None = None, **overrides: object
) -> dict[str, str]:
    """``DRIFTLINE_*`` settings for one run of its own: topics, consumer group and (unless given) key prefix.

    ``overrides`` name settings in lower case without the prefix (``partitions=4``).

    >>> env = run_env("127.0.0.1:9092", "redis://127.0.0.1:6379/0", "abc", partitions=4)
    >>> env["DRIFTLINE_TOPIC_PREDICTIONS"], env["DRIFTLINE_REDIS_PREFIX"], env["DRIFTLINE_PARTITIONS"]
    ('abc.predictions', 'tabc:', '4')
    """
    tag = name or uuid.uuid4().hex[:10]
    env = {
        "DRIFTLINE_KAFKA_BOOTSTRAP": bootstrap,
        "DRIFTLINE_REDIS_URL": redis_url,
        "DRIFTLINE_REDIS_PREFIX": prefix if prefix is not None else f"t{tag}:",
        "DRIFTLINE_APP_ID": f"driftline-{tag}",
        "DRIFTLINE_TOPIC_PREDICTIONS": f"{tag}.predictions",
        "DRIFTLINE_TOPIC_OUTCOMES": f"{tag}.outcomes",
        "DRIFTLINE_TOPIC_ALERTS": f"{tag}.alerts",
        "DRIFTLINE_TOPIC_DEADLETTER": f"{tag}.deadletter",
        "DRIFTLINE_TOPIC_EVENTS": f"{tag}.events",
        "DRIFTLINE_LOG_LEVEL": "info",
        **GROUP_TIMING,
    }
    return env | {f"DRIFTLINE_{k.upper()}": str(v) for k, v in overrides.items()}


def settings_of(env: Mapping[str, str]) -> Settings:
    """The settings a worker started with ``env`` reads."""
    names = {k: k.removeprefix("DRIFTLINE_").lower() for k in env if k.startswith("DRIFTLINE_")}
    values: dict[str, Any] = {name: env[k] for k, name in names.items()}
    return Settings(**values)
