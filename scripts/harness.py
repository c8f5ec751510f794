"""What scripts and tests share: run settings, producers, waiting, and reading a process's costs.

The servers themselves (Tansu, Redis) and worker processes live in
:mod:`streams.embedded` and :mod:`streams.launch`, which the CLI uses too.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis

from streams.keys import RedisKeys
from streams.settings import Settings

T = TypeVar("T")

# Tansu 0.6.0 completes a group join after about half the session timeout: keep it short.
GROUP_TIMING = {"DRIFTLINE_SESSION_TIMEOUT_S": "6", "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
                "DRIFTLINE_REBALANCE_TIMEOUT_S": "3"}


def run_env(bootstrap: str, redis_url: str, name: str | None = None, prefix: str | None = None,
            **overrides: str) -> dict[str, str]:
    """``DRIFTLINE_*`` settings for one run of its own: topics, consumer group and (unless given) key prefix."""
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
    return Settings(**{k.removeprefix("DRIFTLINE_").lower(): v for k, v in env.items() if k.startswith("DRIFTLINE_")})


async def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]], linger_ms: int = 20) -> int:
    """Send (topic, key, value) messages with large batches; return once every one is acknowledged.

    Tansu's end offsets can lag while batches are open, so the acknowledgements, not end offsets, say it is all there.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, max_batch_size=1 << 20,
                                max_request_size=16 << 20, acks=1)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        await producer.flush()
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


class Stalled(RuntimeError):
    """Something stopped making progress, exited, or never became ready."""


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.05,
             progress: Callable[[], object] | None = None, stall_s: float | None = None) -> T:
    """Poll ``check`` until it returns something; give up after ``timeout_s``, or when ``progress`` stalls.

    With ``progress`` (any value that changes while things move) and
    ``stall_s``, a wait whose progress has not changed for ``stall_s`` fails early.
    """
    deadline = time.monotonic() + timeout_s
    last, moved = None, time.monotonic()
    while True:
        found = check()
        if found is not None:
            return found
        now = time.monotonic()
        if progress is not None:
            current = progress()
            if current != last:
                last, moved = current, now
            elif stall_s is not None and now - moved > stall_s:
                raise Stalled(f"{what}: no progress for {stall_s:.0f} s (at {current})")
        if now > deadline:
            raise Stalled(f"{what}: not done after {timeout_s:.0f} s")
        time.sleep(every_s)


def model_counts(client: redis.Redis, keys: RedisKeys, models: Iterable[str],
                 fields: tuple[str, ...] = ("predictions", "outcomes", "joined")) -> dict[str, tuple[int, ...]]:
    """Each model's counts from its Redis hash (0 where absent), in one round trip."""
    models = list(models)
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hmget(keys.model(model_id), *fields)
    return {m: tuple(int(v or 0) for v in values) for m, values in zip(models, pipe.execute())}


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size of a live process (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process, its threads included."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return times.user + times.system


class LoadMeter:
    """CPU used on this machine by processes outside this run, in CPUs: the machine may be shared."""

    def sample(self) -> tuple[float, float, float]:
        busy = sum(psutil.cpu_times()[:3])  # user, nice, system
        me = psutil.Process()
        own = sum(me.cpu_times()[:4])
        for child in me.children(recursive=True):
            try:
                own += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return time.monotonic(), busy, own

    @staticmethod
    def foreign(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return max(0.0, (b[1] - a[1]) - (b[2] - a[2])) / max(1e-9, b[0] - a[0])


def cpus() -> int:
    return os.cpu_count() or 1
