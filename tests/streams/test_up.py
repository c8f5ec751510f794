"""``driftline up``: broker, Redis and a worker until SIGTERM; Redis keeps its data across a restart, checkpoints go."""

from __future__ import annotations

import json
import signal
import sys
import urllib.request
from pathlib import Path

import redis
from kafka import KafkaProducer

from scripts.harness import wait_for
from streams.embedded import free_port
from streams.keys import RedisKeys
from streams.launch import ChildProcess
from streams.settings import Settings
from streams.up import UpPorts, banner, forget_checkpoints


def _up(data_dir: Path, ports: UpPorts, log: Path) -> ChildProcess:
    command = [
        sys.executable,
        "-m",
        "streams",
        "up",
        "--data-dir",
        str(data_dir),
        "--kafka-port",
        str(ports.kafka),
        "--redis-port",
        str(ports.redis),
        "--web-port",
        str(ports.web),
    ]
    return ChildProcess(command, env={}, log_path=log).start()


def _dashboard(ports: UpPorts) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.web}/dashboard", timeout=2) as response:
            return True if response.status == 200 and b"dashboard.js" in response.read() else None
    except OSError:
        return None


def test_up_runs_until_sigterm_and_keeps_redis_across_a_restart(tmp_path: Path) -> None:
    ports = UpPorts(free_port(), free_port(), free_port())
    data_dir, log = tmp_path / "state", tmp_path / "up.log"
    up = _up(data_dir, ports, log)
    wait_for(lambda: _dashboard(ports), 120, "the dashboard of driftline up")
    wait_for(lambda: True if "driftline is up" in log.read_text() else None, 10, "the banner")
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{ports.kafka}")
    event = {"model_id": "mine", "prediction_id": "1", "features": {"x": 1.0}, "prediction": 1}
    producer.send("driftline.predictions", key=b"mine", value=json.dumps(event).encode())
    producer.flush()
    producer.close()
    client = redis.Redis(port=ports.redis)
    keys = RedisKeys()
    wait_for(lambda: True if client.hget(keys.model("mine"), "predictions") == b"1" else None, 60, "the event counted")
    up.process.send_signal(signal.SIGTERM)  # as a Ctrl-C would, for the whole stack
    assert up.process.wait(60) == 0
    text = log.read_text()
    assert "stopping the worker, Redis and the broker" in text and "Tansu 0.6.0" in text
    assert f"localhost:{ports.kafka}" in text and f"http://127.0.0.1:{ports.web}/dashboard" in text

    again = _up(data_dir, ports, tmp_path / "up-again.log")
    try:
        wait_for(lambda: _dashboard(ports), 120, "driftline up again")
        assert redis.Redis(port=ports.redis).hget(keys.model("mine"), "predictions") == b"1"  # kept in Redis
    finally:
        again.stop(timeout_s=60)


def test_the_banner_says_where_to_produce_and_what_is_lost() -> None:
    text = banner("localhost:29092", "redis://127.0.0.1:6399/0", UpPorts(), Path(".driftline"), Settings())
    assert "localhost:29092" in text and "driftline.predictions" in text and "driftline.outcomes" in text
    assert "http://127.0.0.1:6066/dashboard" in text and "redis://127.0.0.1:6399/0" in text
    assert "NOT kept" in text and "Tansu 0.6.0" in text


def test_checkpoints_of_a_lost_log_are_dropped(redis_client: redis.Redis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    redis_client.set(f"{keys.prefix}checkpoint:{{driftline/driftline.events}}:0:meta", "x")
    redis_client.set(f"{keys.prefix}checkpoint:{{other/driftline.events}}:0:meta", "x")
    redis_client.set(keys.model("m"), "kept")
    assert forget_checkpoints(redis_client, keys, "driftline") == 1
    assert redis_client.exists(f"{keys.prefix}checkpoint:{{other/driftline.events}}:0:meta", keys.model("m")) == 2
