"""Replay a simulated model's predictions and outcomes against any Kafka broker.

    python -m scripts.produce --bootstrap 127.0.0.1:9092 --model-id credit-risk \\
        --scenario data_drift --events 20000 --drift-at 8000 --rate 400 --batch-size 20

Messages are keyed by ``model_id`` (UTF-8) and carry one event, or a JSON array
of ``--batch-size`` events, as in the driftline wire contract (version 1). Each
outcome is sent ``--outcome-delay`` predictions after its own prediction.
The produce loop, :func:`play`, is importable (:mod:`scripts.demo_run` uses it).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scripts import scenarios
from scripts.harness import Producer, kafka_producer

PREDICTIONS_TOPIC = "driftline.predictions"
OUTCOMES_TOPIC = "driftline.outcomes"


@dataclass
class PlayStats:
    """What :func:`play` sent."""

    predictions: int = 0
    outcomes: int = 0
    messages: int = 0
    seconds: float = 0.0
    failed: int = 0  # messages the producer reported as not delivered
    errors: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.predictions + self.outcomes

    def summary(self) -> str:
        """One line: events, messages, seconds, events per second.

        >>> PlayStats(predictions=10, outcomes=10, messages=4, seconds=2.0).summary()
        'sent 20 events (10 predictions, 10 outcomes) in 4 messages, 2.0 s, 10 events/s'
        """
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        line = (
            f"sent {self.events} events ({self.predictions} predictions, {self.outcomes} outcomes) "
            f"in {self.messages} messages, {self.seconds:.1f} s, {rate:,.0f} events/s"
        )
        if self.failed:
            line += f", {self.failed} messages FAILED (first error: {self.errors[0]})"
        return line


def play(
    producer: Producer,
    pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    *,
    predictions_topic: str = PREDICTIONS_TOPIC,
    outcomes_topic: str = OUTCOMES_TOPIC,
    rate: float = 0.0,
    batch_size: int = 1,
    outcome_delay: int = 0,
    stop: threading.Event | None = None,
    flush: bool = True,
) -> PlayStats:
    """Send ``pairs`` through ``producer`` (:func:`scripts.harness.kafka_producer`); return what was sent.

    ``rate`` paces predictions per second in real time (0: as fast as possible).
    ``batch_size`` > 1 packs that many events into one JSON array per message.
    The outcome of prediction ``i`` is sent once prediction ``i + outcome_delay``
    was queued. When ``stop`` is set, no new prediction is sent; the outcomes
    already owed are still sent (they are at most ``outcome_delay``), so every
    prediction sent gets its outcome.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    stats = PlayStats()
    lock = threading.Lock()
    waiting: collections.deque[dict[str, Any]] = collections.deque()
    buffers: dict[str, list[dict[str, Any]]] = {predictions_topic: [], outcomes_topic: []}

    def failed(exc: BaseException) -> None:
        with lock:
            stats.failed += 1
            if len(stats.errors) < 5:
                stats.errors.append(f"{type(exc).__name__}: {exc}")

    def send(topic: str, events: list[dict[str, Any]]) -> None:
        value = events[0] if batch_size == 1 else events
        body = json.dumps(value, separators=(",", ":")).encode()
        producer.send(topic, body, key=events[0]["model_id"].encode(), on_error=failed)
        stats.messages += 1

    def queue(topic: str, event: dict[str, Any]) -> None:
        buffer = buffers[topic]
        buffer.append(event)
        if len(buffer) >= batch_size:
            send(topic, buffer)
            buffers[topic] = []

    began = time.monotonic()
    for prediction, outcome in pairs:
        if stop is not None and stop.is_set():
            break
        if rate > 0:
            ahead = began + stats.predictions / rate - time.monotonic()
            if ahead > 0.002:
                if stop is not None:
                    if stop.wait(ahead):
                        break
                else:
                    time.sleep(ahead)
        queue(predictions_topic, prediction)
        stats.predictions += 1
        waiting.append(outcome)
        while len(waiting) > outcome_delay:
            queue(outcomes_topic, waiting.popleft())
            stats.outcomes += 1
    if buffers[predictions_topic]:
        send(predictions_topic, buffers[predictions_topic])
    while waiting:
        queue(outcomes_topic, waiting.popleft())
        stats.outcomes += 1
    if buffers[outcomes_topic]:
        send(outcomes_topic, buffers[outcomes_topic])
    if flush:
        producer.flush()
    stats.seconds = time.monotonic() - began
    return stats


def main(argv: list[str] | None = None) -> int:
    """Replay one scenario from the command line; 0 when every message was delivered."""
    parser = argparse.ArgumentParser(description="Replay a simulated model's events against a Kafka broker.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka HOST:PORT (default %(default)s)")
    parser.add_argument("--model-id", default="credit-risk", help="the model_id of every event (default %(default)s)")
    parser.add_argument("--scenario", choices=scenarios.KINDS, default="steady")
    parser.add_argument("--events", type=int, default=10_000, help="predictions to send (each gets an outcome)")
    parser.add_argument("--drift-at", type=int, default=None, help="first drifted event (default: half-way)")
    parser.add_argument("--rate", type=float, default=0.0, help="predictions per second, 0 = as fast as possible")
    parser.add_argument("--batch-size", type=int, default=1, help="events per message; >1 sends JSON arrays")
    parser.add_argument("--outcome-delay", type=int, default=0, help="send each outcome this many events later")
    parser.add_argument("--predictions-topic", default=PREDICTIONS_TOPIC)
    parser.add_argument("--outcomes-topic", default=OUTCOMES_TOPIC)
    parser.add_argument("--seed", type=int, default=0, help="the simulated world's random seed")
    parser.add_argument("--model-version", default="v1")
    parser.add_argument(
        "--start",
        type=float,
        default=None,
        help="event time of the first event, epoch s (default: now; with --rate 0, so that the last event is now)",
    )
    parser.add_argument(
        "--event-interval",
        type=float,
        default=None,
        help="mean event-time step between predictions, s (default 1/rate, or 0.0025)",
    )
    args = parser.parse_args(argv)
    if args.events < 0 or args.batch_size < 1 or args.outcome_delay < 0 or args.rate < 0:
        parser.error("--events, --outcome-delay and --rate must be >= 0, --batch-size >= 1")
    interval = args.event_interval if args.event_interval is not None else (1 / args.rate if args.rate else 0.0025)
    drift_at = args.drift_at if args.drift_at is not None else args.events // 2
    start = args.start
    if start is None and not args.rate:  # a backfill: event times end now rather than in the future
        start = time.time() - args.events * interval
    pairs = scenarios.stream(
        args.model_id,
        args.scenario,
        args.events,
        drift_at,
        args.seed,
        start,
        interval_s=interval,
        outcome_lag_s=args.outcome_delay * interval,
        model_version=args.model_version,
    )
    from kafka.errors import KafkaError

    try:
        producer = kafka_producer(args.bootstrap, client_id="driftline-produce")
    except KafkaError as exc:
        print(f"produce: cannot connect to Kafka at {args.bootstrap}: {exc}", file=sys.stderr)
        return 2
    try:
        stats = play(
            producer,
            pairs,
            predictions_topic=args.predictions_topic,
            outcomes_topic=args.outcomes_topic,
            rate=args.rate,
            batch_size=args.batch_size,
            outcome_delay=args.outcome_delay,
        )
    except KeyboardInterrupt:
        producer.close(timeout_s=2)
        print("produce: interrupted", file=sys.stderr)
        return 130
    producer.close(timeout_s=10)
    print(f"{args.model_id} {args.scenario}: {stats.summary()}")
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
