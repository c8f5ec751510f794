"""The chaos run's traffic: a producer thread streaming contract-v1 events, and the ledger of what must be counted.

The traffic for ``--models`` models, at a steady rate: predictions as single
events and as JSON-array batches of one model or of several, unkeyed and
wrongly keyed messages, their outcomes a few hundred events later (a few twice,
a few before their prediction, some never) and a few malformed messages.
Everything comes from one seeded ``random.Random``, so a seed gives the same
traffic; the :class:`Ledger` says exactly what a correct worker counts.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from scripts.harness import Producer, kafka_producer

OUTCOME_SHARE = 0.9  # predictions that get an outcome
DUPLICATE_SHARE = 0.02  # outcomes sent twice
EARLY_SHARE = 0.01  # single predictions whose outcome is sent first
CORRUPT_SHARE = 0.003  # prediction events made invalid (still with a valid model_id)
MALFORMED_SHARE = 0.002  # extra malformed messages, per prediction message
OUTCOME_DELAY = (200, 600)  # in events produced meanwhile

Effect = tuple[str, str, str]  # (prediction | outcome | invalid | rejected, model, prediction id)


@dataclass
class Ledger:
    """What the producer handed to Kafka, and so what the workers must count."""

    models: list[str]
    predictions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    predicted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    labelled: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    messages: int = 0
    events: int = 0
    malformed_messages: int = 0
    batches: int = 0
    mixed_batches: int = 0
    unkeyed: int = 0
    miskeyed: int = 0
    duplicate_outcomes: int = 0
    early_outcomes: int = 0
    rejected: int = 0  # events that must each get one dead letter
    send_errors: int = 0
    first_send_error: str = ""

    def apply(self, effects: list[Effect]) -> None:
        """Count what a message handed to Kafka must do: (kind, model, prediction id) per event."""
        for kind, model, pid in effects:
            if kind == "prediction":
                self.predictions[model] += 1
                self.predicted[model].add(pid)
            elif kind == "outcome":
                self.outcomes[model] += 1
                self.labelled[model].add(pid)
            elif kind == "invalid":  # rejected, and counted as invalid for its model
                self.invalid[model] += 1
                self.rejected += 1
            else:  # rejected, and of no model
                self.rejected += 1

    def expected(self, model: str) -> dict[str, int]:
        """What a correct worker has in Redis for ``model``."""
        return {
            "predictions": self.predictions[model],
            "joined": len(self.predicted[model] & self.labelled[model]),
            "outcomes": self.outcomes[model],
            "invalid": self.invalid[model],
        }


class TrafficProducer(threading.Thread):
    """Streams predictions, their outcomes and some garbage at a steady pace, and keeps the ledger."""

    def __init__(
        self,
        bootstrap: str,
        predictions_topic: str,
        outcomes_topic: str,
        models: list[str],
        per_model: int,
        rate: float,
        seed: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.bootstrap = bootstrap
        self.topic_p, self.topic_o = predictions_topic, outcomes_topic
        self.models = models
        self.per_model = per_model
        self.rate = rate
        self.rng = random.Random(seed)
        self.stop_event = stop
        self.ledger = Ledger(models)
        self.error: BaseException | None = None
        self.started_at = 0.0
        self.finished_at = 0.0
        self.done = threading.Event()
        self._producer: Producer | None = None
        self._due: list[tuple[int, int, str, bytes | None, bytes, list[Effect]]] = []
        self._tie = itertools.count()

    # -- events

    def _prediction(self, model: str, pid: str) -> dict[str, Any]:
        rng = self.rng
        x = rng.gauss(0, 1)
        event: dict[str, Any] = {
            "model_id": model,
            "prediction_id": pid,
            "features": {
                "x": round(x, 6),
                "y": round(rng.random(), 6),
                "plan": rng.choice(["a", "b", "c"]),
                "age": None if rng.random() < 0.05 else rng.randint(18, 90),
            },
            "prediction": int(x > 0),
            "score": round(1 / (1 + pow(2.718281828, -2 * x)), 6),
        }
        if rng.random() < 0.3:
            event["segment"] = {"region": rng.choice(["eu", "us", "ap"])}
        if rng.random() < 0.2:
            event["model_version"] = "v2"
        return event

    def _corrupt(self, event: dict[str, Any]) -> None:
        """Make one prediction invalid while keeping its model_id (the worker counts it as invalid)."""
        how = self.rng.randrange(5)
        if how == 0:
            del event["features"]
        elif how == 1:
            event["score"] = 1.5
        elif how == 2:
            event["features"] = {"x": [1, 2]}
        elif how == 3:
            event["prediction"] = None
        else:
            event["timestamp"] = "yesterday"

    def _outcome(self, model: str, pid: str) -> dict[str, Any]:
        return {"model_id": model, "prediction_id": pid, "label": int(self.rng.random() < 0.5)}

    # -- sending

    def _send(self, topic: str, key: bytes | None, value: bytes | None, effects: list[Effect], events: int) -> None:
        assert self._producer is not None
        self._producer.send(topic, value, key=key, on_error=self._failed)
        ledger = self.ledger
        ledger.apply(effects)
        ledger.messages += 1
        ledger.events += events
        if key is None:
            ledger.unkeyed += 1

    def _failed(self, exc: BaseException) -> None:
        self.ledger.send_errors += 1
        self.ledger.first_send_error = self.ledger.first_send_error or repr(exc)

    def _later(self, due: int, topic: str, key: bytes | None, value: bytes, effects: list[Effect]) -> None:
        heapq.heappush(self._due, (due, next(self._tie), topic, key, value, effects))

    def _schedule_outcome(self, model: str, pid: str) -> None:
        low, high = OUTCOME_DELAY
        if self.rng.random() >= OUTCOME_SHARE:
            return
        value = orjson.dumps(self._outcome(model, pid))
        self._later(
            self.ledger.events + self.rng.randint(low, high), self.topic_o, None, value, [("outcome", model, pid)]
        )
        if self.rng.random() < DUPLICATE_SHARE:
            self.ledger.duplicate_outcomes += 1
            self._later(
                self.ledger.events + self.rng.randint(high, 2 * high),
                self.topic_o,
                None,
                value,
                [("outcome", model, pid)],
            )

    def _send_due(self) -> None:
        """Send what is due: outcomes (single or, now and then, as one array) and delayed predictions."""
        now = self.ledger.events
        due = []
        while self._due and self._due[0][0] <= now:
            due.append(heapq.heappop(self._due))
        outcomes = [d for d in due if d[2] == self.topic_o]
        for _, _, topic, key, value, effects in (d for d in due if d[2] != self.topic_o):
            self._send(topic, key, value, effects, 1)
        if len(outcomes) > 1 and self.rng.random() < 0.2:
            body = b"[" + b",".join(d[4] for d in outcomes) + b"]"
            self._send(self.topic_o, None, body, [e for d in outcomes for e in d[5]], len(outcomes))
            self.ledger.batches += 1
            return
        for _, _, topic, _, value, effects in outcomes:
            model = effects[0][1]
            key = None if self.rng.random() < 0.15 else model.encode()
            self._send(topic, key, value, effects, 1)

    def _malformed(self) -> None:
        """One malformed message of a random kind."""
        rng, ledger = self.rng, self.ledger
        model = rng.choice(self.models)
        topic = rng.choice([self.topic_p, self.topic_o])
        kind = rng.randrange(8)
        effects: list[Effect] = [("rejected", "", "")]
        events = 1
        if kind == 0:
            value: bytes | None = b'{"model_id": "' + model.encode() + b'", "prediction_id": '  # cut short
        elif kind == 1:
            value = b"\xff\xfe binary \x00 garbage"
        elif kind == 2:
            value = b"42"
        elif kind == 3:
            value = None  # a tombstone
        elif kind == 4:
            value = orjson.dumps({"model_id": "no spaces allowed!", "prediction_id": "x", "label": 1})
        elif kind == 5:  # an outcome without its label: invalid, for this model
            topic = self.topic_o
            value = orjson.dumps({"model_id": model, "prediction_id": f"{model}-nolabel-{ledger.messages}"})
            effects = [("invalid", model, "")]
        elif kind == 6:  # a prediction without prediction_id: invalid, for this model
            topic = self.topic_p
            value = orjson.dumps({"model_id": model, "features": {"x": 1.0}, "prediction": 1})
            effects = [("invalid", model, "")]
        else:  # a batch with one good prediction and a number in it: the good one counts
            topic = self.topic_p
            pid = f"{model}-mixed-{ledger.messages}"
            value = orjson.dumps([self._prediction(model, pid), 17])
            effects = [("prediction", model, pid), ("rejected", "", "")]
            events = 2
            self._schedule_outcome(model, pid)
        ledger.malformed_messages += 1
        key = model.encode() if value is None or rng.random() < 0.5 else None  # a tombstone needs a key
        self._send(topic, key, value, effects, events)

    # -- the stream

    def run(self) -> None:
        """Stream everything, then flush; an error is kept in ``error`` for the driver."""
        try:
            self._producer = kafka_producer(self.bootstrap)
            self.started_at = time.monotonic()
            self._stream()
            if left := self._producer.flush(timeout_s=60):
                raise TimeoutError(f"{left} messages not acknowledged 60 s after the last was sent")
        except BaseException as exc:  # noqa: BLE001 - reported by the driver
            self.error = exc
        finally:
            if self._producer is not None:
                self._producer.close(timeout_s=10)
            self.finished_at = time.monotonic()
            self.done.set()

    def _pace(self) -> None:
        ahead = self.started_at + self.ledger.events / self.rate - time.monotonic()
        if ahead > 0:
            self.stop_event.wait(ahead)

    def _stream(self) -> None:
        rng, ledger = self.rng, self.ledger
        remaining = {m: self.per_model for m in self.models}
        last_pace = 0
        while remaining and not self.stop_event.is_set():
            active = list(remaining)
            model = rng.choice(active)
            shape = rng.random()
            if shape < 0.22:
                picks = [model] * rng.randint(2, 8)  # a batch of one model
            elif shape < 0.27:
                picks = [rng.choice(active) for _ in range(rng.randint(2, 6))]  # a batch of several models
            else:
                picks = [model]
            chosen: list[tuple[str, str]] = []
            for m in picks:
                if remaining.get(m, 0) <= 0:
                    continue
                index = self.per_model - remaining[m]
                remaining[m] -= 1
                if remaining[m] == 0:
                    del remaining[m]
                chosen.append((m, f"{m}-{index}"))
            if not chosen:
                continue
            events, effects = [], []
            for m, pid in chosen:
                event = self._prediction(m, pid)
                if rng.random() < CORRUPT_SHARE:
                    self._corrupt(event)
                    effects.append(("invalid", m, pid))
                else:
                    effects.append(("prediction", m, pid))
                events.append(event)
            is_batch = len(chosen) > 1 or shape < 0.27
            mixed = len({m for m, _ in chosen}) > 1
            draw = rng.random()
            if mixed:
                key = None if draw < 0.5 else chosen[0][0].encode()
                ledger.mixed_batches += 1
            elif draw < 0.10:
                key = None
            elif draw < 0.15:
                key = rng.choice(self.models).encode()  # another model's key, or by chance its own
                ledger.miskeyed += key != model.encode()
            else:
                key = model.encode()
            single_early = not is_batch and effects[0][0] == "prediction" and rng.random() < EARLY_SHARE
            if single_early:  # the outcome first, the prediction a few hundred events later
                m, pid = chosen[0]
                ledger.early_outcomes += 1
                self._send(self.topic_o, m.encode(), orjson.dumps(self._outcome(m, pid)), [("outcome", m, pid)], 1)
                self._later(ledger.events + rng.randint(50, 300), self.topic_p, key, orjson.dumps(events[0]), effects)
            else:
                value = orjson.dumps(events if is_batch else events[0])
                self._send(self.topic_p, key, value, effects, len(events))
                ledger.batches += is_batch
                for m, pid in chosen:
                    self._schedule_outcome(m, pid)
            if rng.random() < MALFORMED_SHARE:
                self._malformed()
            self._send_due()
            if ledger.events - last_pace >= 25:
                last_pace = ledger.events
                self._pace()
        while self._due and not self.stop_event.is_set():  # the last outcomes, in order, at the same pace
            _, _, topic, key, value, effects = heapq.heappop(self._due)
            if topic == self.topic_o and key is None and self.rng.random() >= 0.15:
                key = effects[0][1].encode()
            self._send(topic, key, value, effects, 1)
            if ledger.events - last_pace >= 25:
                last_pace = ledger.events
                self._pace()
