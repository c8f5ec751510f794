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
``PR_SET_PDEATHSIG`` and is stopped at the end, so nothing is left behind.
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
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis  # noqa: E402

from streams.embedded import EmbeddedStack, _die_with_parent  # noqa: E402
from streams.launch import WorkerProcess  # noqa: E402
from streams.redis_state import RedisKeys  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402

PREFIX = "driftline:"          # Redis is flushed before every run, so the contract's default prefix is used
READY_KEY = "bench:ready"       # where the limit and peer children say they own their partitions
PROBE_MODEL = "probe"
PROBE_RATE = 50.0               # probe events per second in the latency run
LATENCY_S = 15.0                # seconds of steady traffic in the latency run
LATENCY_WARMUP_S = 2.0          # probe events sent in the first seconds are not counted
RUN_TIMEOUT_S = 300.0


# ---------------------------------------------------------------------------------------------
# Events and production

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


def _slug(shape: str) -> str:
    return shape.split()[0] + ("-batched" if not shape.startswith("1 ") else "-single")


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

    def describe(self) -> str:
        return f"exit code {self.proc.returncode}; log ends with:\n{log_tail(self.log)}"

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

@dataclass
class Result:
    consumer: str
    shape: str
    events: int
    seconds: float
    cpu_s: float
    rss_mb: float | None

    @property
    def rate(self) -> float:
        return self.events / self.seconds


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

    def env(self, kind: str) -> dict[str, str]:
        """DRIFTLINE_* settings for one run: its own topics and consumer group."""
        tag = f"{kind}-{uuid.uuid4().hex[:8]}"
        per_model_outcomes = max(self.workload.per_model().values())
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

    def wait_until(self, done: Callable[[], bool], alive: Callable[[], bool], what: str,
                   describe: Callable[[], str], interval_s: float, timeout_s: float = RUN_TIMEOUT_S) -> float:
        deadline = time.monotonic() + timeout_s
        while True:
            if done():
                return time.perf_counter()
            if not alive():
                raise RuntimeError(f"{what}: the consumer exited; {describe()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not done after {timeout_s:.0f} s; {describe()}")
            time.sleep(interval_s)

    def counts_done(self) -> Callable[[], bool]:
        keys = RedisKeys(PREFIX)
        expected = self.workload.per_model()
        names = list(expected)

        def done() -> bool:
            pipe = self.redis.pipeline(transaction=False)
            for model_id in names:
                pipe.hmget(keys.model(model_id), "predictions", "joined")
            for model_id, (predictions, joined) in zip(names, pipe.execute()):
                if predictions is None or joined is None:
                    return False
                if int(predictions) < expected[model_id] or int(joined) < expected[model_id]:
                    return False
            return True
        return done

    def counts_seen(self) -> str:
        keys = RedisKeys(PREFIX)
        seen = {m: self.redis.hmget(keys.model(m), "predictions", "joined") for m in self.workload.models}
        return f"Redis shows (predictions, joined) {seen}, expected {self.workload.per_model()} of each"

    def worker_ready(self, worker: WorkerProcess) -> Callable[[], bool]:
        key = RedisKeys(PREFIX).workers

        def ready() -> bool:
            return any(orjson.loads(raw)["pid"] == worker.pid for raw in self.redis.hvals(key))
        return ready

    def child_ready(self) -> bool:
        return self.redis.get(READY_KEY) is not None

    # -- the three consumers ---------------------------------------------------------------

    def run_child(self, role: str, shape: str, batch_size: int) -> Result:
        env = self.env(role)
        self.prepare(env, batch_size)
        env = {**env, "BENCH_EVENTS": str(self.workload.events), "BENCH_READY_KEY": READY_KEY}
        child = Child(role, env, self.workdir / f"{role}-{_slug(shape)}.log", stdout=(role == "limit"))
        self.started_pids.append(child.pid)
        try:
            what = f"{role} ({shape})"
            t0 = self.wait_until(self.child_ready, lambda: child.alive, what, child.describe, 0.002, 120.0)
            cpu0 = cpu_seconds(child.pid)
            t1 = self.wait_until(self.counts_done(), lambda: child.alive or self.counts_done()(), what,
                                 lambda: f"{self.counts_seen()}; {child.describe()}", 0.005)
            cpu1 = cpu_seconds(child.pid)
            rss = vmhwm_mb(child.pid)
            if role == "limit":  # it exits by itself and reports its own peak RSS and CPU
                out, _ = child.proc.communicate(timeout=60)
                report = json.loads(out.decode().strip().splitlines()[-1])
                rss, cpu1 = report["rss_mb"], report["cpu_s"]
                if report["alerts"]:
                    print(f"  note: the limit loop raised {report['alerts']} alerts")
            return Result(role, shape, self.workload.events, t1 - t0, cpu1 - cpu0, rss)
        finally:
            child.stop()

    def run_driftline(self, shape: str, batch_size: int) -> Result:
        env = self.env("driftline")
        self.prepare(env, batch_size)
        log = self.workdir / f"driftline-{_slug(shape)}.log"
        worker = WorkerProcess(env, log_path=log).start()
        self.started_pids.append(worker.pid)
        try:
            what = f"driftline ({shape})"
            tail = lambda: log_tail(log)  # noqa: E731
            t0 = self.wait_until(self.worker_ready(worker), lambda: worker.alive, what, tail, 0.002, 120.0)
            cpu0 = cpu_seconds(worker.pid)
            t1 = self.wait_until(self.counts_done(), lambda: worker.alive, what,
                                 lambda: f"{self.counts_seen()}; log ends with:\n{tail()}", 0.005)
            cpu1 = cpu_seconds(worker.pid)
            rss = vmhwm_mb(worker.pid)
            return Result("driftline", shape, self.workload.events, t1 - t0, cpu1 - cpu0, rss)
        finally:
            worker.stop()

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
            self.wait_until(self.worker_ready(worker), lambda: worker.alive, "latency worker",
                            lambda: log_tail(log), 0.01, 120.0)
            probes = int(PROBE_RATE * LATENCY_S)
            poller = Child("probe", {"BENCH_REDIS_URL": self.stack.redis.url,
                                     "BENCH_KEY": RedisKeys(PREFIX).model(PROBE_MODEL),
                                     "BENCH_PROBES": str(probes), "BENCH_TIMEOUT_S": str(LATENCY_S + 90)},
                           self.workdir / "probe.log", stdout=True)
            self.started_pids.append(poller.pid)
            cpu0 = cpu_seconds(worker.pid)
            sent, produced, elapsed = asyncio.run(self._steady_traffic(settings, rate, probes))
            cpu1 = cpu_seconds(worker.pid)
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
        if len(reached) < probes:
            print(f"  warning: only {len(reached)} of {probes} probe events reached Redis")
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        return {"rate": produced / elapsed, "probes": len(latencies), "p50": pick(0.50), "p99": pick(0.99),
                "max": latencies[-1], "rss_mb": rss, "cpu": (cpu1 - cpu0) / elapsed}

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
    from streams.state import PartitionStates

    settings = Settings()
    expected = int(os.environ["BENCH_EVENTS"])
    partitions = ensure_topics(settings)
    states = PartitionStates(settings)
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
            for partition, events in routed.events.items():
                for wire in events:
                    states.model(partition, wire["model_id"]).apply(wire)
                processed += len(events)
            now = time.time()
            changed = states.dirty()
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
    while last < probes and time.monotonic() < deadline:
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
    parser.add_argument("--events", type=int, default=100_000,
                        help="events per run, predictions plus outcomes (default 100000: about 3 minutes)")
    parser.add_argument("--features", type=int, default=10, help="numeric features per prediction (default 10)")
    parser.add_argument("--models", type=int, default=8, help="models (default 8)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per message in the batched shape")
    parser.add_argument("--role", choices=["limit", "peer", "probe"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def machine_busy_pct(seconds: float = 1.0) -> float:
    """How busy all CPUs are right now (before we start anything), in percent."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def main() -> int:
    args = parse_args()
    if args.role:
        {"limit": role_limit, "peer": role_peer, "probe": role_probe}[args.role]()
        return 0
    started = time.perf_counter()
    busy = machine_busy_pct()
    print(f"driftline bench: {args.events} events per run ({args.events // 2} predictions + outcomes), "
          f"{args.features} features, {args.models} models, batches of {args.batch_size}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{busy:.0f}% CPU busy before start (other processes)", flush=True)
    workload = make_workload(args.events, args.features, args.models)
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    results: list[Result] = []
    latency: dict[str, Any] | None = None
    server_pids: list[int] = []
    with EmbeddedStack() as stack:
        for server in (stack.broker, stack.redis):
            if server._proc is not None:  # noqa: SLF001
                server_pids.append(server._proc.pid)  # noqa: SLF001
        bench = Bench(args, stack, workdir, workload)
        try:
            for shape, batch_size in (("1 event/msg", 1), (f"{args.batch_size} events/msg", args.batch_size)):
                for consumer in ("limit", "peer", "driftline"):
                    t = time.perf_counter()
                    if consumer == "driftline":
                        result = bench.run_driftline(shape, batch_size)
                    else:
                        result = bench.run_child(consumer, shape, batch_size)
                    results.append(result)
                    print(f"  {consumer:9} {shape:15} {result.rate:>9,.0f} events/s  "
                          f"({result.seconds:.2f} s, consumer CPU {100 * result.cpu_s / result.seconds:.0f}%, "
                          f"peak RSS {result.rss_mb or 0:.0f} MB; step took {time.perf_counter() - t:.1f} s)",
                          flush=True)
            one = next(r for r in results if r.consumer == "driftline" and r.shape == "1 event/msg")
            t = time.perf_counter()
            latency = bench.run_latency(one.rate / 2)
            print(f"  latency at {latency['rate']:,.0f} events/s: p50 {latency['p50']:.1f} ms, "
                  f"p99 {latency['p99']:.1f} ms, max {latency['max']:.1f} ms "
                  f"(step took {time.perf_counter() - t:.1f} s)", flush=True)
        finally:
            bench.redis.close()
    leftovers = [pid for pid in bench.started_pids + server_pids if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    print(report(args, results, latency, busy, time.perf_counter() - started, leftovers, workdir))
    return 1 if leftovers else 0


def report(args: argparse.Namespace, results: list[Result], latency: dict[str, Any] | None, busy: float,
           seconds: float, leftovers: list[int], workdir: Path) -> str:
    limits = {r.shape: r.rate for r in results if r.consumer == "limit"}
    lines = [
        "",
        f"## driftline benchmark ({args.events:,} events per run: predictions + outcomes; "
        f"{args.features} numeric features, {args.models} models)",
        "",
        "| consumer | input shape | events/s | vs limit | seconds | consumer CPU | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else "n/a"
        lines.append(f"| {r.consumer} | {r.shape} | {r.rate:,.0f} | {r.rate / limits[r.shape]:.2f} | "
                     f"{r.seconds:.2f} | {100 * r.cpu_s / r.seconds:.0f}% | {rss} |")
    if latency:
        lines += [
            "",
            f"Latency, produce to Redis, driftline worker at {latency['rate']:,.0f} events/s over {args.models} "
            f"models plus a probe model at {PROBE_RATE:.0f} events/s ({latency['probes']} probe events after "
            f"{LATENCY_WARMUP_S:.0f} s warm-up; worker CPU {100 * latency['cpu']:.0f}%):",
            "",
            "| p50 ms | p99 ms | max ms |",
            "|---:|---:|---:|",
            f"| {latency['p50']:.1f} | {latency['p99']:.1f} | {latency['max']:.1f} |",
        ]
    worker_rss = [r.rss_mb for r in results if r.consumer == "driftline" and r.rss_mb]
    if latency and latency["rss_mb"]:
        worker_rss.append(latency["rss_mb"])
    limit_rss = [r.rss_mb for r in results if r.consumer == "limit" and r.rss_mb]
    lines += [
        "",
        f"Peak RSS (VmHWM): driftline worker {max(worker_rss, default=0):.0f} MB, "
        f"limit loop {max(limit_rss, default=0):.0f} MB.",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({platform.machine()}), "
        f"{busy:.0f}% CPU busy with other work at start. Run time {seconds:.0f} s. Logs: {workdir}",
        "Leftover processes: " + (", ".join(map(str, leftovers)) if leftovers else "none"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
