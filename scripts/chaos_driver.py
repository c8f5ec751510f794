"""The chaos driver: the servers and two workers it starts, and the crashes and Redis outages it causes.

On a schedule drawn from the seed it SIGKILLs a worker (alternating between
the two, restarting it at once), restarts Redis once (stop, start on the same
port and append-only data folder) and makes Redis unreachable once. Between
actions it watches that restarted workers get ready, that none dies on its own
and that writes resume after Redis returns. Convergence on the ledger of :mod:`scripts.chaos_traffic` is
:func:`scripts.chaos_checks.converge`.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from scripts.chaos_traffic import DUPLICATE_SHARE, OUTCOME_SHARE, TrafficProducer
from scripts.harness import WorkerProcess, run_env, worker_registry
from streams.embedded import EmbeddedBroker, EmbeddedRedis
from streams.keys import RedisKeys


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
    """The run: its servers, the two worker seats, the producer, the chaos schedule, and what was seen."""

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
        self.producer: TrafficProducer | None = None
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
        """Seconds since the run began."""
        return time.monotonic() - self.t0

    def note(self, event: str, detail: str = "") -> None:
        """Add an event to the timeline, and print it."""
        self.timeline.append((self.now(), event, detail))
        print(f"  [{self.now():6.1f} s] {event}{': ' + detail if detail else ''}", flush=True)

    def problem(self, text: str) -> None:
        """Record a problem (the run fails) and note it."""
        self.problems.append(text)
        self.note("PROBLEM", text)

    def client(self) -> redis.Redis:
        """A Redis client with short timeouts, made again after Redis restarts."""
        assert self.redis is not None
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.redis.url, socket_timeout=2, socket_connect_timeout=1, decode_responses=True
            )
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
        return {
            m: {f: int(v) if v is not None else None for f, v in zip(fields, row, strict=True)}
            for m, row in zip(self.models, rows, strict=True)
        }

    def progress(self) -> int | None:
        """Predictions plus outcomes counted in Redis; None while Redis is unreachable."""
        counts = self.counts()
        if counts is None:
            return None
        return sum((c["predictions"] or 0) + (c["outcomes"] or 0) for c in counts.values())

    def registry(self) -> dict[int, list[int]] | None:
        """The workers in the Redis registry (pid -> partitions); None while Redis is unreachable."""
        try:
            return worker_registry(self.client(), RedisKeys(self.env["DRIFTLINE_REDIS_PREFIX"]))
        except (redis.RedisError, OSError):
            return None

    def alive(self) -> int:
        """How many of the two workers are running."""
        return sum(slot.worker.alive for slot in self.slots)

    # -- set-up

    def start(self) -> None:
        """Start Tansu, an append-only Redis and two workers; wait until both workers are ready."""
        args, work = self.args, self.workdir
        self.broker = EmbeddedBroker(log_path=work / "tansu.log").start()
        self.redis = EmbeddedRedis(data_dir=work / "redis-data", appendonly=True, log_path=work / "redis.log").start()
        self.note("servers up", f"Tansu {self.broker.bootstrap}, redis-server {self.redis.url} (appendonly)")
        name = f"chaos{self.run_id}"
        self.env = run_env(
            self.broker.bootstrap,
            self.redis.url,
            name,
            prefix=f"{name}:",
            partitions=args.partitions,
            checkpoint_interval_s=args.checkpoint_interval,
        )
        for n in range(2):
            worker = WorkerProcess(self.env, work / f"worker-{n}.1.log").start()
            self.slots.append(Slot(n, worker))
        for slot in self.slots:
            slot.worker.ready(timeout_s=120)
        owned = self.registry() or {}
        self.note(
            "workers ready",
            ", ".join(
                f"worker-{s.index} pid {s.worker.pid} partitions {owned.get(s.worker.pid, '?')}" for s in self.slots
            ),
        )

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
        """SIGKILL the next worker in turn and start it again at once."""
        slot = self.slots[self.kills % 2]
        self.kills += 1
        old = slot.worker
        old_pid = old.pid
        slot.expected_down = True
        old.kill()
        old.stop()  # closes its log
        self.restart(slot)
        slot.expected_down = False
        self.note(
            f"kill {self.kills}",
            f"SIGKILL worker-{slot.index} (pid {old_pid}, exit {old.returncode}); restarted as pid {slot.worker.pid}",
        )

    def restart(self, slot: Slot) -> None:
        """A new incarnation of the slot's worker, with a log of its own; its readiness is watched by ``tick``."""
        slot.incarnation += 1
        slot.worker = WorkerProcess(self.env, self.workdir / f"worker-{slot.index}.{slot.incarnation}.log").start()
        slot.waiting_since = time.monotonic()

    def redis_down(self) -> None:
        """Stop Redis: it stays unreachable until ``redis_up``."""
        assert self.redis is not None
        before = self.progress()
        self.redis.stop()
        self.redis_outages += 1
        self._client = None
        self.note("Redis stopped", f"unreachable for {self.args.outage:.0f} s (counts before: {before})")

    def redis_up(self, what: str, before: int | None) -> None:
        """Start Redis again on its port and data folder; check that nothing was lost; watch writes resume."""
        assert self.redis is not None
        started = time.monotonic()
        self.redis.start()
        after = self.progress()
        self.note(
            f"Redis {what}",
            f"started again on port {self.redis.port}, same AOF folder, in "
            f"{time.monotonic() - started:.1f} s; counts before {before}, after {after}; "
            f"workers alive {self.alive()}/2",
        )
        if before is not None and after is not None and after < before:
            self.problem(f"Redis lost data across the restart: counts {before} -> {after}")
        self.watches.append(Watch(what, time.monotonic(), after))

    def redis_restart(self) -> None:
        """Stop Redis and start it again at once."""
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
                rc = slot.worker.returncode
                self.problem(
                    f"worker-{slot.index} (pid {slot.worker.pid}) exited on its own with code {rc}; restarting it"
                )
                slot.worker.stop()
                self.restart(slot)
        if self.redis is None or not self.redis.alive:
            return
        waiting = [s for s in self.slots if s.waiting_since is not None]
        if waiting:
            owned = self.registry()
            for slot in waiting:
                if owned is not None and slot.worker.pid in owned:
                    took = time.monotonic() - slot.waiting_since
                    self.note(
                        f"worker-{slot.index} ready",
                        f"pid {slot.worker.pid} in the registry after "
                        f"{took:.1f} s, partitions {owned[slot.worker.pid]}",
                    )
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
                self.note(
                    "writes resumed",
                    f"{time.monotonic() - watch.since:.1f} s after Redis {watch.what}; workers alive {self.alive()}/2",
                )
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
        """Sleep ``seconds``, ticking all along."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.tick()
            time.sleep(min(0.2, left))

    def produce_and_break(self) -> None:
        """Start the producer, carry out the schedule while it runs, and wait until it is done."""
        args = self.args
        planned = args.models * args.events_per_model * (1 + OUTCOME_SHARE * (1 + DUPLICATE_SHARE)) / args.rate
        self.producer = TrafficProducer(
            self.env["DRIFTLINE_KAFKA_BOOTSTRAP"],
            self.env["DRIFTLINE_TOPIC_PREDICTIONS"],
            self.env["DRIFTLINE_TOPIC_OUTCOMES"],
            self.models,
            args.events_per_model,
            args.rate,
            f"{args.seed}-data",
            self.stop,
        )
        self.producer.start()
        started = time.monotonic()
        self.note(
            "producer started",
            f"{len(self.models)} models x {args.events_per_model} predictions, "
            f"{args.rate:.0f} events/s, about {planned:.0f} s planned",
        )
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
        self.note(
            "producer finished",
            f"{p.ledger.events} events in {p.ledger.messages} messages, "
            f"{took:.1f} s, {p.ledger.events / max(took, 1e-9):.0f} events/s",
        )

    # -- tear-down

    def shutdown(self) -> None:
        """Stop the workers (SIGTERM), the producer and the servers."""
        self.stop.set()
        codes = []
        for slot in self.slots:
            try:
                codes.append(f"worker-{slot.index}: {slot.worker.stop(timeout_s=15)}")
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
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
