"""The harness against real processes, the session's Tansu broker and its Redis."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import redis

from scripts.harness import ChildProcess, kafka_producer, read_topic, wait_for, wait_for_counts
from streams.embedded import EmbeddedBroker
from streams.keys import RedisKeys
from streams.topics import ensure_topics


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_wait_for_returns_what_check_found_once_it_finds_it() -> None:
    calls = iter([None, None, "found"])
    assert wait_for(lambda: next(calls), 5.0, "third call", every_s=0.01) == "found"


def test_wait_for_fails_at_the_deadline_with_the_last_progress() -> None:
    ticks = iter(range(10**6))
    with pytest.raises(TimeoutError, match=r"never: not done after 0.2 s \(at \d+\)"):
        wait_for(lambda: None, 0.2, "never", every_s=0.01, progress=lambda: next(ticks), stall_s=5.0)


def test_wait_for_fails_early_when_progress_stalls() -> None:
    with pytest.raises(TimeoutError, match=r"stuck: no progress for 0.1 s \(at 3\)"):
        wait_for(lambda: None, 60.0, "stuck", every_s=0.01, progress=lambda: 3, stall_s=0.1)


def test_wait_for_without_progress_has_only_its_deadline() -> None:
    with pytest.raises(TimeoutError, match=r"plain: not done after 0.3 s$"):
        wait_for(lambda: None, 0.3, "plain", every_s=0.01, stall_s=0.05)


def test_wait_for_lets_an_error_of_check_through() -> None:
    def check() -> None:
        raise ProcessLookupError("gone")

    with pytest.raises(ProcessLookupError, match="gone"):
        wait_for(check, 5.0, "a child")


def test_child_output_goes_to_its_log_and_stop_is_a_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    code = "import sys, time; print('hello', flush=True); print('oops', file=sys.stderr, flush=True); time.sleep(60)"
    with ChildProcess(python(code), log_path=log) as child:
        wait_for(lambda: True if "oops" in child.log_tail() else None, 20.0, "child output")
        assert child.alive and child.returncode is None
        assert child.stop() == -signal.SIGTERM
    assert not child.alive
    assert log.read_text().split() == ["hello", "oops"]


def test_kill_is_a_sigkill_and_start_after_stop_runs_the_command_again(tmp_path: Path) -> None:
    child = ChildProcess(python("import time; time.sleep(60)"), log_path=tmp_path / "child.log").start()
    first = child.pid
    child.kill()
    assert child.returncode == -signal.SIGKILL and not child.alive
    child.stop()
    child.start()
    try:
        assert child.alive and child.pid != first
    finally:
        child.stop()


def test_captured_stdout_and_the_environment_on_top_of_ours(tmp_path: Path) -> None:
    code = "import os; print(os.environ['HARNESS_WORD'], os.environ['PATH'] != '')"
    child = ChildProcess(python(code), {"HARNESS_WORD": "ahoy"}, tmp_path / "child.log", capture_stdout=True)
    assert child.start().communicate(timeout_s=20) == "ahoy True\n"
    assert child.stop() == 0


def test_both_producers_deliver_every_message_and_read_topic_reads_them_back(
    broker: EmbeddedBroker, driftline_env: dict[str, str], unique: str
) -> None:
    from scripts.harness import settings_of

    ensure_topics(settings_of(driftline_env))
    topic = driftline_env["DRIFTLINE_TOPIC_PREDICTIONS"]
    sent = set()
    for client in ("kafka-python", "confluent"):
        with kafka_producer(broker.bootstrap, client) as producer:
            for i in range(50):
                value = f"{client}-{i}".encode()
                producer.send(topic, value, key=f"k{i}".encode(), partition=i % 4)
                sent.add(value)
            assert producer.flush(30) == 0
            assert (producer.sent, producer.delivered, producer.failed) == (50, 50, 0)
    records = read_topic(broker.bootstrap, topic, timeout_s=30, count=100)
    assert {r.value for r in records} == sent
    assert {r.partition for r in records} == {0, 1, 2, 3}
    assert read_topic(broker.bootstrap, topic, timeout_s=30, idle_s=1.0, count=1000) != []


def test_a_failed_delivery_is_counted_and_reported(broker: EmbeddedBroker, driftline_env: dict[str, str]) -> None:
    from scripts.harness import settings_of

    ensure_topics(settings_of(driftline_env))  # 4 partitions
    topic = driftline_env["DRIFTLINE_TOPIC_OUTCOMES"]
    errors: list[BaseException] = []
    with kafka_producer(broker.bootstrap, "confluent", **{"message.timeout.ms": 3000}) as confluent:
        confluent.send(topic, b"nowhere", partition=9, on_error=errors.append)  # refused at once or undelivered
        assert confluent.flush(20) == 0
    assert (confluent.sent, confluent.delivered, confluent.failed) == (1, 0, 1) and len(errors) == 1
    assert "PARTITION" in confluent.first_error
    with kafka_producer(broker.bootstrap, max_request_size=1 << 10) as python:
        python.send(topic, b"x" * 4096, on_error=errors.append)  # refused before it is queued: too large
        assert python.flush(20) == 0
    assert (python.sent, python.delivered, python.failed) == (1, 0, 1) and len(errors) == 2
    assert "MessageSizeTooLarge" in python.first_error


def test_wait_for_counts_returns_the_whole_hashes_once_counts_are_exact(redis_client: redis.Redis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    redis_client.hset(keys.model("a"), mapping={"predictions": 3, "joined": 2, "status": "ok"})
    redis_client.hset(keys.model("b"), mapping={"predictions": 1})
    want = {"a": {"predictions": 3, "joined": 2}, "b": {"predictions": 1}}
    seen = wait_for_counts(redis_client, keys, want, timeout_s=10)
    assert seen == {"a": {"predictions": "3", "joined": "2", "status": "ok"}, "b": {"predictions": "1"}}


def test_wait_for_counts_fails_when_the_counts_stop_moving(redis_client: redis.Redis, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    redis_client.hset(keys.model("a"), mapping={"predictions": 2})
    with pytest.raises(TimeoutError, match=r"no progress for 0.5 s \(at \{'a': \{'predictions': '2', 'joined': None"):
        wait_for_counts(redis_client, keys, {"a": {"predictions": 2, "joined": 2}}, timeout_s=60, stall_s=0.5)
