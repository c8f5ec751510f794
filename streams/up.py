"""``driftline up``: a broker on localhost:29092, Redis and one worker, until Ctrl-C. Try it with your own events.

Redis keeps its data in ``--data-dir`` (``.driftline/redis``, append-only
file), so a restart keeps what the worker wrote: models' counts and state as
last written, their history, alerts, model configurations and uploaded
references. The broker is Tansu 0.6.0 with in-memory storage: it loses every
topic, message and committed offset when it stops. The worker's checkpoints
name offsets of that lost log, so ``up`` drops them when it starts; models
seen again start their counts and detectors afresh from their next events.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from streams.embedded import EmbeddedBroker, EmbeddedRedis, EmbeddedStack
from streams.errors import EmbeddedServerError
from streams.keys import RedisKeys
from streams.launch import WorkerProcess
from streams.redis_client import SyncClient, sync_client
from streams.settings import Settings
from streams.web_dashboard import DASHBOARD_PATH

# Tansu 0.6.0 completes a group join after about half the session timeout: keep it short on loopback.
GROUP_TIMING = {
    "DRIFTLINE_SESSION_TIMEOUT_S": "6",
    "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
    "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
}


class Stopped(Exception):
    """SIGINT or SIGTERM arrived."""


@dataclass(frozen=True, slots=True)
class UpPorts:
    """Where ``up`` listens: the broker, Redis and the worker's web port."""

    kafka: int = 29092
    redis: int = 6399
    web: int = 6066


def banner(bootstrap: str, redis_url: str, ports: UpPorts, data_dir: Path, settings: Settings) -> str:
    """What ``up`` prints once everything runs: where to produce, the dashboard, Redis, what survives a restart."""
    dashboard = f"http://127.0.0.1:{ports.web}{DASHBOARD_PATH}"
    return "\n".join(
        [
            "driftline is up. Ctrl-C stops it.",
            f"  produce to   {bootstrap}  topics {settings.topic_predictions} and {settings.topic_outcomes}",
            f"               e.g. python -m scripts.produce --bootstrap {bootstrap} --model-id my-model",
            f"  dashboard    {dashboard}",
            f"  JSON API     http://127.0.0.1:{ports.web}/api/models   (described at /api/openapi.json)",
            f"  Redis        {redis_url}   (DRIFTLINE_REDIS_URL={redis_url} driftline status)",
            f"  alerts       topic {settings.topic_alerts}; logs in {data_dir / 'logs'}",
            f"Kept across restarts: Redis, in {data_dir / 'redis'} (models' last state, history, alerts,",
            "configurations, references). NOT kept: the broker's topics, messages and offsets: Tansu 0.6.0 keeps",
            "them in memory only, so after a restart models start their counts and detectors afresh from their next",
            "events (the worker's checkpoints name offsets of the lost log, so up drops them when it starts).",
        ]
    )


def forget_checkpoints(client: SyncClient, keys: RedisKeys, app_id: str) -> int:
    """Delete the worker group's checkpoints: they name offsets of a log the new broker does not have."""
    pattern = f"{keys.prefix}checkpoint:{{{app_id}/*"
    found = list(client.scan_iter(match=pattern, count=1000))
    if found:
        client.delete(*found)
    return len(found)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def run_up(data_dir: Path, kafka_port: int, redis_port: int, web_port: int) -> int:
    """Run the stack until SIGINT or SIGTERM, then stop the worker (a final checkpoint), Redis and the broker."""
    ports, logs = UpPorts(kafka_port, redis_port, web_port), data_dir / "logs"
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = EmbeddedStack(
        EmbeddedBroker(port=ports.kafka, log_path=logs / "tansu.log"),
        EmbeddedRedis(port=ports.redis, data_dir=data_dir / "redis", appendonly=True, log_path=logs / "redis.log"),
    )
    worker: WorkerProcess | None = None
    code = 0
    try:
        stack.start()
        env = {**stack.env(), **GROUP_TIMING, "DRIFTLINE_WEB_PORT": str(ports.web)}
        settings = Settings(kafka_bootstrap=stack.broker.bootstrap, redis_url=stack.redis.url)
        with sync_client(settings) as client:
            forget_checkpoints(client, RedisKeys(settings.redis_prefix), settings.app_id)
        worker = WorkerProcess(env, log_path=logs / "worker.log").start()
        worker.ready(timeout_s=90)
        print(banner(f"localhost:{ports.kafka}", stack.redis.url, ports, data_dir, settings), flush=True)
        while worker.alive:
            time.sleep(0.5)
        print(
            f"driftline up: the worker exited with {worker.returncode}; log ends with:\n{worker.log_tail()}",
            file=sys.stderr,
        )
        code = 1
    except Stopped as why:
        print(f"\ndriftline up: {why}: stopping the worker, Redis and the broker", flush=True)
    except EmbeddedServerError as exc:
        print(f"driftline up: {exc}\n(logs in {logs})", file=sys.stderr)
        code = 1
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        if worker is not None:
            worker.stop(timeout_s=20)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


__all__ = ["UpPorts", "banner", "forget_checkpoints", "run_up"]
