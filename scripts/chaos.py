#!/usr/bin/env python
"""Chaos run: crash workers and Redis under load, then check that every count in Redis is exact.

Run from the repository root::

    .venv/bin/python scripts/chaos.py [--models 6] [--events-per-model N] [--rate EVENTS_PER_S]
                                      [--kills 4] [--seed S]

It starts an embedded Tansu broker, an append-only ``redis-server`` and two
``driftline worker`` processes (logs go to a temporary folder printed first).
A producer thread streams contract-v1 traffic for ``--models`` models at
``--rate`` events per second in all: predictions (single events, JSON-array
batches of one model or of several, unkeyed and wrongly keyed messages), their
outcomes a few hundred events later (a few twice, a few before their
prediction, some never) and a few malformed messages. It keeps a ledger of
exactly what a correct worker must count.

Meanwhile the driver, on a schedule drawn from ``--seed``, SIGKILLs a worker
``--kills`` times (alternating between the two, and restarting it at once),
restarts Redis once (stop, start on the same port and append-only data folder)
and makes Redis unreachable once for ``--outage`` seconds. Both workers must
survive the Redis events. When the producer is done it waits (at most
``--converge-timeout`` seconds) until the counts in Redis settle, and compares
``predictions`` and ``joined`` of every model with the ledger.

It prints three markdown tables (per model, the timeline of chaos events, what
the logs say) and a summary line, and exits 0 on PASS and 1 on FAIL (130 when
interrupted). Every broker, Redis and worker process it started is stopped at
the end, also on Ctrl-C or SIGTERM, and it checks that none is left.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from streams.embedded import EmbeddedBroker, EmbeddedRedis  # noqa: E402
from streams.launch import WorkerProcess  # noqa: E402
from streams.keys import RedisKeys  # noqa: E402

OUTCOME_SHARE = 0.9  # predictions that get an outcome
DUPLICATE_SHARE = 0.02  # outcomes sent twice
EARLY_SHARE = 0.01  # single predictions whose outcome is sent first
CORRUPT_SHARE = 0.003  # prediction events made invalid (still with a valid model_id)
MALFORMED_SHARE = 0.002  # extra malformed messages, per prediction message
OUTCOME_DELAY = (200, 600)  # in events produced meanwhile


# --------------------------------------------------------------------------- the ledger


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

    def apply(self, effects: list[tuple[str, str, str]]) -> None:
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
        return {
            "predictions": self.predictions[model],
            "joined": len(self.predicted[model] & self.labelled[model]),
            "outcomes": self.outcomes[model],
            "invalid": self.invalid[model],
        }


# --------------------------------------------------------------------------- the producer


class Producer(threading.Thread):
    """Streams predictions, their outcomes and some garbage at a steady pace, and keeps the ledger."""

    def __init__(self, bootstrap: str, predictions_topic: str, outcomes_topic: str, models: list[str],
                 per_model: int, rate: float, seed: str, stop: threading.Event) -> None:
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
        self._producer: KafkaProducer | None = None
        self._due: list[tuple[int, int, str, bytes | None, bytes, list[tuple[str, str, str]]]] = []
        self._tie = itertools.count()

    # -- events

    def _prediction(self, model: str, pid: str) -> dict[str, Any]:
        rng = self.rng
        x = rng.gauss(0, 1)
        event: dict[str, Any] = {
            "model_id": model, "prediction_id": pid,
            "features": {"x": round(x, 6), "y": round(rng.random(), 6), "plan": rng.choice(["a", "b", "c"]),
                         "age": None if rng.random() < 0.05 else rng.randint(18, 90)},
            "prediction": int(x > 0), "score": round(1 / (1 + pow(2.718281828, -2 * x)), 6),
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

    def _send(self, topic: str, key: bytes | None, value: bytes | None, effects: list[tuple[str, str, str]],
              events: int) -> None:
        assert self._producer is not None
        future = self._producer.send(topic, key=key, value=value)
        future.add_errback(self._failed)
        ledger = self.ledger
        ledger.apply(effects)
        ledger.messages += 1
        ledger.events += events
        if key is None:
            ledger.unkeyed += 1

    def _failed(self, exc: BaseException) -> None:
        self.ledger.send_errors += 1
        self.ledger.first_send_error = self.ledger.first_send_error or repr(exc)

    def _later(self, due: int, topic: str, key: bytes | None, value: bytes,
               effects: list[tuple[str, str, str]]) -> None:
        heapq.heappush(self._due, (due, next(self._tie), topic, key, value, effects))

    def _schedule_outcome(self, model: str, pid: str) -> None:
        low, high = OUTCOME_DELAY
        if self.rng.random() >= OUTCOME_SHARE:
            return
        value = orjson.dumps(self._outcome(model, pid))
        self._later(self.ledger.events + self.rng.randint(low, high), self.topic_o, None, value,
                    [("outcome", model, pid)])
        if self.rng.random() < DUPLICATE_SHARE:
            self.ledger.duplicate_outcomes += 1
            self._later(self.ledger.events + self.rng.randint(high, 2 * high), self.topic_o, None, value,
                        [("outcome", model, pid)])

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
        effects: list[tuple[str, str, str]] = [("rejected", "", "")]
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
        try:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
            self.started_at = time.monotonic()
            self._stream()
            self._producer.flush(timeout=60)
        except BaseException as exc:  # noqa: BLE001: reported by the driver
            self.error = exc
        finally:
            if self._producer is not None:
                self._producer.close(timeout=10)
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
                self._send(self.topic_o, m.encode(), orjson.dumps(self._outcome(m, pid)),
                           [("outcome", m, pid)], 1)
                self._later(ledger.events + rng.randint(50, 300), self.topic_p, key,
                            orjson.dumps(events[0]), effects)
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


# --------------------------------------------------------------------------- the driver


@dataclass
class Slot:
    """One of the two worker seats, with its current process."""

    index: int
    worker: WorkerProcess
    incarnation: int = 1
    waiting_since: float | None = None  # started, not yet in the registry
    expected_down: bool = False


@dataclass
class Watch:
    """After Redis comes back: do writes resume, and are both workers still alive?"""

    what: str
    since: float
    baseline: int | None = None


class Chaos:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.t0 = time.monotonic()
        self.timeline: list[tuple[float, str, str]] = []
        self.problems: list[str] = []
        self.broker: EmbeddedBroker | None = None
        self.redis: EmbeddedRedis | None = None
        self.slots: list[Slot] = []
        self.stop = threading.Event()
        self.producer: Producer | None = None
        self.env: dict[str, str] = {}
        self.models = [f"chaos-{n}.m" if n % 2 else f"chaos_{n}" for n in range(args.models)]
        self.kills = 0
        self.redis_restarts = 0
        self.redis_outages = 0
        self.watches: list[Watch] = []
        self.final_counts: dict[str, dict[str, int | None]] = {}
        self.alive_at_end = 0
        self.converged_after: float | None = None
        self.dead_letter_counts: tuple[int, int] | None = None
        self.run_id = uuid.uuid4().hex[:8]
        self._client: redis.Redis | None = None

    # -- helpers

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, event: str, detail: str = "") -> None:
        self.timeline.append((self.now(), event, detail))
        print(f"  [{self.now():6.1f} s] {event}{': ' + detail if detail else ''}", flush=True)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.note("PROBLEM", text)

    def client(self) -> redis.Redis:
        assert self.redis is not None
        if self._client is None:
            self._client = redis.Redis.from_url(self.redis.url, socket_timeout=2, socket_connect_timeout=1,
                                                decode_responses=True)
        return self._client

    def counts(self) -> dict[str, dict[str, int | None]] | None:
        """Every model's counts in Redis; None while Redis is unreachable."""
        keys = RedisKeys(self.env["DRIFTLINE_REDIS_PREFIX"])
        fields = ("predictions", "joined", "outcomes", "invalid")
        try:
            pipe = self.client().pipeline(transaction=False)
            for model in self.models:
                pipe.hmget(keys.model(model), *fields)
            rows = pipe.execute()
        except (redis.RedisError, OSError):
            return None
        return {m: {f: int(v) if v is not None else None for f, v in zip(fields, row)}
                for m, row in zip(self.models, rows)}

    def progress(self) -> int | None:
        counts = self.counts()
        if counts is None:
            return None
        return sum((c["predictions"] or 0) + (c["outcomes"] or 0) for c in counts.values())

    def registry(self) -> dict[int, list[int]] | None:
        keys = RedisKeys(self.env["DRIFTLINE_REDIS_PREFIX"])
        try:
            entries = self.client().hvals(keys.workers)
        except (redis.RedisError, OSError):
            return None
        out = {}
        for raw in entries:
            doc = orjson.loads(raw)
            out[int(doc["pid"])] = list(doc.get("partitions") or [])
        return out

    def alive(self) -> int:
        return sum(slot.worker.alive for slot in self.slots)

    # -- set-up

    def start(self) -> None:
        args, work = self.args, self.workdir
        self.broker = EmbeddedBroker(log_path=work / "tansu.log").start()
        self.redis = EmbeddedRedis(data_dir=work / "redis-data", appendonly=True, log_path=work / "redis.log").start()
        self.note("servers up", f"Tansu {self.broker.bootstrap}, redis-server {self.redis.url} (appendonly)")
        rid = self.run_id
        self.env = {
            "DRIFTLINE_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "DRIFTLINE_REDIS_URL": self.redis.url,
            "DRIFTLINE_REDIS_PREFIX": f"chaos{rid}:",
            "DRIFTLINE_APP_ID": f"driftline-chaos-{rid}",
            "DRIFTLINE_TOPIC_PREDICTIONS": f"chaos{rid}.predictions",
            "DRIFTLINE_TOPIC_OUTCOMES": f"chaos{rid}.outcomes",
            "DRIFTLINE_TOPIC_ALERTS": f"chaos{rid}.alerts",
            "DRIFTLINE_TOPIC_DEADLETTER": f"chaos{rid}.deadletter",
            "DRIFTLINE_TOPIC_EVENTS": f"chaos{rid}.events",
            "DRIFTLINE_PARTITIONS": str(args.partitions),
            "DRIFTLINE_SESSION_TIMEOUT_S": "6",
            "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
            "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
            "DRIFTLINE_CHECKPOINT_INTERVAL_S": str(args.checkpoint_interval),
            "DRIFTLINE_LOG_LEVEL": "info",
        }
        for n in range(2):
            worker = WorkerProcess(self.env, work / f"worker-{n}.1.log").start()
            self.slots.append(Slot(n, worker))
        for slot in self.slots:
            slot.worker.ready(timeout_s=120)
        owned = self.registry() or {}
        self.note("workers ready", ", ".join(f"worker-{s.index} pid {s.worker.pid} partitions "
                                             f"{owned.get(s.worker.pid, '?')}" for s in self.slots))

    # -- the chaos

    def schedule(self, duration: float) -> list[tuple[float, str]]:
        """Seeded moments for the kills and the two Redis events, spread over the produce phase."""
        rng = random.Random(f"{self.args.seed}-chaos")
        actions = ["kill"] * self.args.kills + ["redis-restart", "redis-outage"]
        rng.shuffle(actions)
        begin, end = min(5.0, duration * 0.1), duration * 0.9
        width = (end - begin) / len(actions)
        return [(begin + i * width + rng.uniform(0.05, 0.75) * width, a) for i, a in enumerate(actions)]

    def kill(self) -> None:
        slot = self.slots[self.kills % 2]
        self.kills += 1
        old = slot.worker
        old_pid = old.pid
        slot.expected_down = True
        old.kill()
        old.stop()  # closes its log
        slot.incarnation += 1
        slot.worker = WorkerProcess(self.env, self.workdir / f"worker-{slot.index}.{slot.incarnation}.log").start()
        slot.waiting_since = time.monotonic()
        slot.expected_down = False
        self.note(f"kill {self.kills}", f"SIGKILL worker-{slot.index} (pid {old_pid}, exit {old.process.returncode}); "
                                        f"restarted as pid {slot.worker.pid}")

    def redis_down(self) -> None:
        assert self.redis is not None
        before = self.progress()
        self.redis.stop()
        self.redis_outages += 1
        self._client = None
        self.note("Redis stopped", f"unreachable for {self.args.outage:.0f} s (counts before: {before})")

    def redis_up(self, what: str, before: int | None) -> None:
        assert self.redis is not None
        started = time.monotonic()
        self.redis.start()
        after = self.progress()
        self.note(f"Redis {what}", f"started again on port {self.redis.port}, same AOF folder, in "
                                   f"{time.monotonic() - started:.1f} s; counts before {before}, after {after}; "
                                   f"workers alive {self.alive()}/2")
        if before is not None and after is not None and after < before:
            self.problem(f"Redis lost data across the restart: counts {before} -> {after}")
        self.watches.append(Watch(what, time.monotonic(), after))

    def redis_restart(self) -> None:
        assert self.redis is not None
        before = self.progress()
        self.redis.stop()
        self._client = None
        self.redis_restarts += 1
        self.redis_up("restarted", before)

    def tick(self) -> None:
        """Between actions: readiness of restarted workers, unexpected deaths, writes after Redis returns."""
        for slot in self.slots:
            if not slot.worker.alive and not slot.expected_down:
                rc = slot.worker.process.returncode if slot.worker.process else None
                self.problem(f"worker-{slot.index} (pid {slot.worker.pid}) exited on its own with code {rc}; "
                             f"restarting it")
                slot.worker.stop()
                slot.incarnation += 1
                slot.worker = WorkerProcess(self.env,
                                            self.workdir / f"worker-{slot.index}.{slot.incarnation}.log").start()
                slot.waiting_since = time.monotonic()
        if self.redis is None or not self.redis.alive:
            return
        waiting = [s for s in self.slots if s.waiting_since is not None]
        if waiting:
            owned = self.registry()
            for slot in waiting:
                if owned is not None and slot.worker.pid in owned:
                    took = time.monotonic() - slot.waiting_since
                    self.note(f"worker-{slot.index} ready", f"pid {slot.worker.pid} in the registry after "
                                                            f"{took:.1f} s, partitions {owned[slot.worker.pid]}")
                    slot.waiting_since = None
                elif time.monotonic() - slot.waiting_since > 90:
                    self.problem(f"worker-{slot.index} (pid {slot.worker.pid}) not in the registry after 90 s")
                    slot.waiting_since = None
        for watch in list(self.watches):
            value = self.progress()
            if value is None:
                continue
            if watch.baseline is None:
                watch.baseline = value
            elif value > watch.baseline:
                self.note("writes resumed", f"{time.monotonic() - watch.since:.1f} s after Redis {watch.what}; "
                                            f"workers alive {self.alive()}/2")
                if self.alive() < 2:
                    self.problem(f"a worker did not survive Redis {watch.what}")
                self.watches.remove(watch)
            elif time.monotonic() - watch.since > 60:
                producing = self.producer is not None and not self.producer.done.is_set()
                if producing:
                    self.problem(f"no state written in the 60 s after Redis {watch.what}")
                else:
                    self.note("no new writes", f"in the 60 s after Redis {watch.what} (nothing left to do?)")
                self.watches.remove(watch)

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.tick()
            time.sleep(min(0.2, left))

    def produce_and_break(self) -> None:
        args = self.args
        planned = args.models * args.events_per_model * (1 + OUTCOME_SHARE * (1 + DUPLICATE_SHARE)) / args.rate
        self.producer = Producer(self.env["DRIFTLINE_KAFKA_BOOTSTRAP"], self.env["DRIFTLINE_TOPIC_PREDICTIONS"],
                                 self.env["DRIFTLINE_TOPIC_OUTCOMES"], self.models, args.events_per_model,
                                 args.rate, f"{args.seed}-data", self.stop)
        self.producer.start()
        started = time.monotonic()
        self.note("producer started", f"{len(self.models)} models x {args.events_per_model} predictions, "
                                      f"{args.rate:.0f} events/s, about {planned:.0f} s planned")
        for at, action in self.schedule(planned):
            self.wait(at - (time.monotonic() - started))
            if action == "kill":
                self.kill()
            elif action == "redis-restart":
                self.redis_restart()
            else:
                before = self.progress()
                self.redis_down()
                self.wait(args.outage)
                self.redis_up(f"back after an outage of {args.outage:.0f} s", before)
        while not self.producer.done.is_set():
            self.wait(0.5)
            if time.monotonic() - started > planned * 4 + 120:
                self.problem("the producer did not finish in time; stopping it")
                self.stop.set()
                self.producer.done.wait(30)
                break
        p = self.producer
        took = p.finished_at - p.started_at
        if p.error is not None:
            self.problem(f"producer failed: {p.error!r}")
        if p.ledger.send_errors:
            self.problem(f"{p.ledger.send_errors} sends failed, first: {p.ledger.first_send_error}")
        self.note("producer finished", f"{p.ledger.events} events in {p.ledger.messages} messages, "
                                       f"{took:.1f} s, {p.ledger.events / max(took, 1e-9):.0f} events/s")

    # -- convergence

    def dead_letters(self) -> tuple[int, int]:
        """Distinct rejected events on the dead-letter topic, and how many letters in all."""
        consumer = KafkaConsumer(self.env["DRIFTLINE_TOPIC_DEADLETTER"], bootstrap_servers=self.env[
            "DRIFTLINE_KAFKA_BOOTSTRAP"], group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=5000,
            client_id="chaos-deadletters")
        seen, total = set(), 0
        try:
            for record in consumer:
                doc = orjson.loads(record.value)
                seen.add((doc.get("source_topic"), doc.get("partition"), doc.get("offset"), doc.get("batch_index")))
                total += 1
        finally:
            consumer.close()
        return len(seen), total

    def converge(self) -> None:
        assert self.producer is not None
        ledger = self.producer.ledger
        want = {m: ledger.expected(m) for m in self.models}
        start = time.monotonic()
        last_change, last, matched_since = start, None, None
        while True:
            self.tick()
            counts = self.counts()
            now = time.monotonic()
            if counts is not None:
                if counts != last:
                    last, last_change = counts, now
                matches = all(counts[m]["predictions"] == want[m]["predictions"]
                              and counts[m]["joined"] == want[m]["joined"] for m in self.models)
                # Tansu's ListOffsets answers a wrong high watermark, so consumer lag cannot tell when
                # the workers are done: counts that match and stay so for 5 s (no late over-count) are.
                if matches:
                    matched_since = matched_since or now
                    if now - matched_since >= 5:
                        self.converged_after = matched_since - start
                        self.note("converged", f"counts match {self.converged_after:.1f} s after the producer "
                                               f"finished, and still do 5 s later")
                        break
                else:
                    matched_since = None
                    if now - last_change > self.args.settle and self.alive() == 2 and not self.watches:
                        self.note("settled", f"counts unchanged for {self.args.settle:.0f} s with both workers "
                                             f"alive, and they do not match")
                        break
            if now - start > self.args.converge_timeout:
                self.note("gave up", f"counts did not converge in {self.args.converge_timeout:.0f} s")
                break
            time.sleep(0.5)
        self.final_counts = self.counts() or {}
        self.alive_at_end = self.alive()
        try:
            self.dead_letter_counts = self.dead_letters()
        except Exception as exc:  # noqa: BLE001: informative only
            self.note("dead letters unreadable", repr(exc))
        if self.alive_at_end < 2:
            self.problem(f"only {self.alive_at_end}/2 workers alive at the end")

    # -- tear-down

    def shutdown(self) -> None:
        self.stop.set()
        codes = []
        for slot in self.slots:
            try:
                codes.append(f"worker-{slot.index}: {slot.worker.stop(timeout_s=15)}")
            except Exception as exc:  # noqa: BLE001
                codes.append(f"worker-{slot.index}: {exc!r}")
        if self.slots:
            self.note("workers stopped", "SIGTERM, exit codes " + ", ".join(codes))
        if self.producer is not None:
            self.producer.join(15)
        if self._client is not None:
            self._client.close()
        for server in (self.redis, self.broker):
            if server is not None:
                server.stop()

    def leftovers(self) -> list[str]:
        """Our processes still running: children of this process, or anything on our ports or app id."""
        found = set(subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split())
        for server in (self.broker, self.redis):
            if server is not None:
                found.update(subprocess.run(["pgrep", "-f", f"127.0.0.1:{server.port}"],
                                            capture_output=True, text=True).stdout.split())
        app = self.env.get("DRIFTLINE_APP_ID")
        for pid in subprocess.run(["pgrep", "-f", "streams worker"], capture_output=True, text=True).stdout.split():
            try:
                if app and f"DRIFTLINE_APP_ID={app}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                    found.add(pid)
            except OSError:
                pass
        found.discard(str(os.getpid()))
        rows = []
        for pid in sorted(found, key=int):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                rows.append(f"{pid} {command.strip()}")
            except OSError:
                pass
        return rows


# --------------------------------------------------------------------------- reporting

LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def scan_logs(workdir: Path, run_id: str) -> tuple[list[tuple[str, int, int, int]], Counter[str]]:
    rows, patterns = [], Counter()
    for path in sorted(workdir.glob("*.log")):
        warnings = errors = tracebacks = 0
        for line in path.read_text(errors="replace").splitlines():
            found = LOG_LINE.search(line)
            if not found:
                continue
            level = found.group(1) or "Traceback"
            if level == "WARNING":
                warnings += 1
            elif level == "Traceback":
                tracebacks += 1
            else:
                errors += 1
            text = line[found.start():].replace(run_id, "<run>")
            if "dead letter from" in text:
                text = "WARNING] dead letter from … (one per rejected event)"
            text = re.sub(r"0x[0-9a-f]+", "0x…", text)
            text = re.sub(r"\d+(\.\d+)?", "N", text)
            patterns[text[:150]] += 1
        rows.append((path.name, warnings, errors, tracebacks))
    return rows, patterns


def report(run: Chaos, total_s: float, interrupted: bool, leftovers: list[str]) -> bool:
    out = []
    ledger = run.producer.ledger if run.producer is not None else None
    ok_models = True
    other_mismatch = []
    if ledger is not None and not run.final_counts:
        out.append("\nCounts not compared: the run did not get that far.")
    if ledger is not None and run.final_counts:
        out.append("\n## Counts per model\n")
        out.append("| model | predictions expected | predictions got | joined expected | joined got | result |")
        out.append("|---|---:|---:|---:|---:|---|")
        for m in run.models:
            want = ledger.expected(m)
            got = run.final_counts.get(m, {})
            ok = got.get("predictions") == want["predictions"] and got.get("joined") == want["joined"]
            ok_models &= ok
            out.append(f"| {m} | {want['predictions']} | {got.get('predictions')} | {want['joined']} | "
                       f"{got.get('joined')} | {'OK' if ok else 'MISMATCH'} |")
            for f in ("outcomes", "invalid"):
                if got.get(f) != want[f]:
                    other_mismatch.append(f"{m} {f} expected {want[f]} got {got.get(f)}")
        out.append("")
        out.append(f"Also checked: `outcomes` and `invalid` "
                   + ("match for every model." if not other_mismatch else "differ: " + "; ".join(other_mismatch)))
        if run.dead_letter_counts is not None:
            distinct, total = run.dead_letter_counts
            out.append(f"Dead letters: {distinct} distinct rejected events on the topic, {ledger.rejected} expected"
                       f"{' (OK)' if distinct == ledger.rejected else ' (DIFFERENT)'}; {total - distinct} "
                       f"repeated after a crash.")
        out.append(f"Traffic: {ledger.messages} messages, {ledger.events} events; "
                   f"{sum(ledger.predictions.values())} valid predictions, {sum(ledger.outcomes.values())} valid "
                   f"outcomes ({ledger.duplicate_outcomes} sent twice, {ledger.early_outcomes} before their "
                   f"prediction), {ledger.batches} array batches ({ledger.mixed_batches} of several models), "
                   f"{ledger.unkeyed} unkeyed and {ledger.miskeyed} wrongly keyed messages, "
                   f"{ledger.malformed_messages} malformed messages, {sum(ledger.invalid.values())} invalid events "
                   f"of known models.")
    out.append("\n## Timeline\n")
    out.append("| t (s) | event | detail |")
    out.append("|---:|---|---|")
    for t, event, detail in run.timeline:
        out.append(f"| {t:.1f} | {event} | {detail.replace('|', '/')} |")
    rows, patterns = scan_logs(run.workdir, run.run_id)
    out.append(f"\n## Logs ({run.workdir})\n")
    out.append("| log | WARNING | ERROR/CRITICAL | Traceback |")
    out.append("|---|---:|---:|---:|")
    for name, w, e, tb in rows:
        out.append(f"| {name} | {w} | {e} | {tb} |")
    if patterns:
        out.append("\nWhat they say (digits as N), most frequent first:\n")
        for text, n in patterns.most_common(20):
            out.append(f"- {n} x `{text.replace('`', chr(39))}`")
    if leftovers:
        out.append("\nLEFT RUNNING: " + "; ".join(leftovers))
    passed = (ledger is not None and bool(run.final_counts) and ok_models and not run.problems and run.alive_at_end == 2
              and not interrupted and not leftovers and ledger.send_errors == 0
              and run.producer is not None and run.producer.error is None)
    p = run.producer
    span = (p.finished_at - p.started_at) if p is not None and p.finished_at else 0.0
    events = ledger.events if ledger is not None else 0
    out.append("")
    if run.problems:
        out.append("Problems: " + "; ".join(run.problems))
    out.append(f"**Summary:** {events} events in {span:.1f} s ({events / span if span else 0:.0f} events/s), "
               f"kills {run.kills}, Redis restarts {run.redis_restarts + run.redis_outages} "
               f"({run.redis_restarts} stop/start, {run.redis_outages} outage of {run.args.outage:.0f} s), "
               f"workers alive at the end {run.alive_at_end}/2, "
               + (f"converged {run.converged_after:.1f} s after the producer, " if run.converged_after is not None
                  else "not converged, ")
               + f"seed {run.args.seed}, run time {total_s:.0f} s, leftover processes {len(leftovers)}: "
               + ("**INTERRUPTED**" if interrupted else ("**PASS**" if passed else "**FAIL**")))
    print("\n".join(out), flush=True)
    return passed


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", type=int, default=6, help="models to simulate")
    parser.add_argument("--events-per-model", type=int, default=36_000, help="prediction events per model")
    parser.add_argument("--rate", type=float, default=2_500.0, help="events per second in all (with outcomes)")
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs (alternating workers)")
    parser.add_argument("--seed", type=int, default=None, help="seed of traffic and schedule (None: a random one, printed)")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis stays unreachable")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of driftline's topics")
    parser.add_argument("--checkpoint-interval", type=float, default=1.0, help="DRIFTLINE_CHECKPOINT_INTERVAL_S")
    parser.add_argument("--converge-timeout", type=float, default=180.0, help="seconds to wait for exact counts")
    parser.add_argument("--settle", type=float, default=45.0,
                        help="stop waiting when wrong counts have not changed for this long")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 100_000)
    if args.models < 1 or args.events_per_model < 1 or args.rate <= 0 or args.kills < 0:
        parser.error("--models, --events-per-model and --rate must be positive, --kills not negative")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (nohup, &)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="driftline-chaos-"))
    print(f"driftline chaos: seed {args.seed}, logs in {workdir}", flush=True)
    run = Chaos(args, workdir)
    interrupted = False
    try:
        run.start()
        run.produce_and_break()
        run.converge()
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping everything", flush=True)
    except Exception as exc:  # noqa: BLE001: reported as a failure, after clean-up
        run.problem(f"driver failed: {exc!r}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        try:
            run.shutdown()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    time.sleep(0.2)
    leftovers = run.leftovers()
    passed = report(run, time.monotonic() - started, interrupted, leftovers)
    if interrupted:
        return 130
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
