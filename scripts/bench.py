"""driftline's benchmark: throughput and latency beside a floor measured in the same run, memory, checkpoints.

Run from the repository root::

    .venv/bin/python -m scripts.bench [--quick]

One embedded stack (a Tansu broker and a redis-server on free loopback ports)
serves every run; each run has its own topics, consumer group and a flushed
Redis. For a throughput run the events are produced first (every one
acknowledged), then one consumer starts and is timed from the moment it owns
its partitions until Redis shows every prediction, outcome and join counted.
The consumers (:mod:`scripts.bench_roles`):

* ``floor``: a plain aiokafka ``getmany`` loop that orjson-decodes every event
  and touches every feature value, with no detection and no Redis;
* ``peer``: a naive Faust app (an agent per topic, river ADWIN per feature, one
  Redis HSET per event);
* ``driftline``: the real worker (``python -m streams worker``).

Latency runs give a fresh worker steady traffic in one-event messages plus a
probe model whose events carry their send time; a child polls Redis every
millisecond to time each probe event from produce to Redis. The latency floor
(:mod:`scripts.bench_roles` ``latency_floor``, a plain aiokafka consumer that
decodes every event and counts the probe's in Redis) runs the same traffic
first: what the broker, the client and Redis cost on this machine. A latency run lasts
25 s: its steady figure is over the probes sent after the first 10 s (while its
fresh models build their references), and the first seconds are reported beside
it. The last run is a flood: one event for each of 20,000 new model ids (a client
bug), timed until every one is counted, with the worker's peak RSS. Throughput runs set
``DRIFTLINE_WATERMARK_IDLE_S=0.5`` so the last events are decided half a
second after input stops (the default waits 1 s); that wait is inside the
measured time. The 8 x 10 batched shape runs a second time with ten
times the events: there the fixed costs (a worker's first fetch, every
model's reference and calibration, that last half second) are a small share,
so it shows the rate a worker sustains through a backlog. The machine may be shared: each figure comes
with the CPU other processes used meanwhile. The workloads are in
:mod:`scripts.bench_workload`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

from scripts import bench_state
from scripts.bench_workload import Shape, all_counted, messages, steady_traffic, workload, workload_counts
from scripts.harness import (
    ChildProcess,
    LoadMeter,
    WorkerProcess,
    cpu_seconds,
    model_counts,
    peak_rss_mb,
    produce,
    run_env,
    settings_of,
    wait_for,
    worker_registry,
)
from streams.embedded import EmbeddedStack
from streams.keys import RedisKeys
from streams.topics import ensure_topics

PREFIX = "driftline:"  # Redis is flushed before every run
LOAD = LoadMeter()


@dataclass
class Result:
    what: str
    shape: Shape
    events: int
    seconds: float | None = None
    rss_mb: float | None = None
    cpu: float = 0.0
    other_cpus: float = 0.0
    error: str = ""
    extra: str = ""

    @property
    def rate(self) -> float | None:
        return self.events / self.seconds if self.seconds else None


class Bench:
    def __init__(self, stack: EmbeddedStack, workdir: Path) -> None:
        self.stack, self.workdir = stack, workdir
        self.redis = redis.Redis.from_url(stack.redis.url)
        self.keys = RedisKeys(PREFIX)

    def env(self, **overrides: Any) -> dict[str, str]:
        return run_env(self.stack.broker.bootstrap, self.stack.redis.url, prefix=PREFIX, **overrides)

    def prepare(self, env: dict[str, str], shape: Shape) -> tuple[list[str], int]:
        self.redis.flushdb()
        settings = settings_of(env)
        ensure_topics(settings)
        models, predictions, outcomes = workload(shape)
        batch = messages(shape, settings.topic_predictions, predictions) + messages(
            shape, settings.topic_outcomes, outcomes
        )
        asyncio.run(produce(settings.kafka_bootstrap, batch))
        return models, len(predictions) + len(outcomes)

    def throughput(self, role: str, shape: Shape, note: str = "", **overrides: Any) -> Result:
        env = self.env(watermark_idle_s=0.5, **overrides)
        models, events = self.prepare(env, shape)
        expected = workload_counts(shape)
        result = Result(role, shape, events)
        log = self.workdir / f"{role}-{shape.models}x{shape.features}-{shape.batch}-{shape.segments}.log"
        load0 = LOAD.sample()
        if role == "floor":
            floor = _role("floor", {**env, "BENCH_EVENTS": str(events)}, log, capture_stdout=True).start()
            try:
                report = json.loads(floor.communicate(timeout_s=600).strip().splitlines()[-1])
            finally:
                floor.stop()
            result.seconds, result.rss_mb = report["seconds"], report["rss_mb"]
            result.cpu = report["cpu_s"] / max(report["seconds"], 1e-9)
        else:
            child = self._start(role, env, log)
            try:
                t0 = wait_for(lambda: time.perf_counter() if self._ready(role, child) else None, 120, f"{role} ready")
                cpu0 = cpu_seconds(child.pid)
                counted = lambda: sum(sum(c) for c in model_counts(self.redis, self.keys, models).values())  # noqa: E731
                wait_for(
                    lambda: True if all_counted(model_counts(self.redis, self.keys, models), expected) else None,
                    900,
                    f"{role} counting",
                    every_s=0.02,
                    progress=counted,
                    stall_s=30,
                )
                result.seconds = time.perf_counter() - t0
                result.cpu = (cpu_seconds(child.pid) - cpu0) / result.seconds
                result.rss_mb = peak_rss_mb(child.pid)
                if role == "driftline":
                    result.extra = note + self._worker_extra(shape)
            except TimeoutError as exc:
                result.error = str(exc)
            finally:
                child.stop()
        result.other_cpus = LOAD.foreign(load0, LOAD.sample())
        return result

    def _start(self, role: str, env: dict[str, str], log: Path) -> Any:
        if role == "driftline":
            return WorkerProcess(env, log_path=log).start()
        return _role(role, {**env, "BENCH_READY_KEY": "bench:ready"}, log).start()

    def _ready(self, role: str, child: Any) -> bool:
        if not child.alive:
            raise TimeoutError(f"{role} exited before it was ready")
        if role == "driftline":
            return bool(worker_registry(self.redis, self.keys).get(child.pid))  # it owns its partitions
        return self.redis.get("bench:ready") is not None

    def _worker_extra(self, shape: Shape) -> str:
        entries = [orjson.loads(raw) for raw in self.redis.hvals(self.keys.workers)]
        stats = entries[0] if entries else {}
        share = stats.get("checkpoint_seconds", 0.0) / max(stats.get("uptime_seconds", 0.0), 1e-9)
        blobs = self.redis.keys(f"{PREFIX}checkpoint:*:models")
        size = sum(self.redis.hstrlen(key, m) for key in blobs for m in self.redis.hkeys(key))
        for key in self.redis.keys(f"{PREFIX}checkpoint:*:join:*"):  # the models' join stores, entry by entry
            size += sum(len(name) + len(value) for name, value in self.redis.hgetall(key).items())
        per_model = size / max(shape.models, 1)
        return (
            f"checkpoints {100 * share:.1f}% of the worker's time, {per_model / 1024:.1f} KiB per model "
            f"({per_model / shape.features / 1024:.2f} KiB per feature) in Redis"
        )

    def latency(self, shape: Shape, rate: float, seconds: float = 25.0, role: str = "driftline") -> Result:
        """A fresh worker (or the latency floor) under ``rate`` events/s in one-event messages, plus a probe
        model at 50 events/s."""
        env = self.env()
        self.redis.flushdb()
        settings = settings_of(env)
        ensure_topics(settings)
        probes = int(50 * seconds)
        log = self.workdir / f"latency-{role}-{shape.models}.log"
        if role == "driftline":
            worker = WorkerProcess(env, log_path=log).start()
        else:
            floor_env = {"BENCH_KEY": self.keys.model("probe"), "BENCH_TIMEOUT_S": str(seconds + 60)}
            worker = self._start("latency_floor", {**env, **floor_env}, log)
        result = Result("latency" if role == "driftline" else "latency floor", shape, 0)
        try:
            wait_for(lambda: True if self._ready(role, worker) else None, 120, f"latency {role} ready")
            poller = _role(
                "probe",
                {
                    **env,
                    "BENCH_REDIS_URL": self.stack.redis.url,
                    "BENCH_KEY": self.keys.model("probe"),
                    "BENCH_PROBES": str(probes),
                    "BENCH_TIMEOUT_S": str(seconds + 45),
                },
                self.workdir / "probe.log",
                capture_stdout=True,
            ).start()
            wait_for(lambda: self.redis.get("bench:probe-ready"), 60, "probe polling")
            load0, cpu0 = LOAD.sample(), cpu_seconds(worker.pid)
            sent, produced, elapsed = asyncio.run(steady_traffic(settings, shape, rate, seconds, probes))
            result.cpu = (cpu_seconds(worker.pid) - cpu0) / elapsed
            result.other_cpus = LOAD.foreign(load0, LOAD.sample())
            out = poller.communicate(timeout_s=seconds + 120)
            reached: list[float] = []
            for t, count in json.loads(out.strip().splitlines()[-1]):
                reached += [t] * (min(count, probes) - len(reached))
            cold = _latencies(sent, reached, 2.0, WARM_S)
            lat = _latencies(sent, reached, WARM_S, math.inf)
            pick = lambda q, lat=lat: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
            counted = sum(
                sum(c)
                for c in model_counts(
                    self.redis,
                    self.keys,
                    [f"model-{m}" for m in range(shape.models)] + ["probe"],
                    ("predictions", "outcomes"),
                ).values()
            )
            result.events, result.seconds, result.rss_mb = produced, elapsed, peak_rss_mb(worker.pid)
            backlog = f"; backlog when traffic stopped {produced - counted:,} events" if role == "driftline" else ""
            first = lambda q: cold[min(len(cold) - 1, int(q * len(cold)))] if cold else float("nan")  # noqa: E731
            result.extra = (
                f"steady (after {WARM_S:.0f} s): p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {pick(1.0):.1f} "
                f"ms over {len(lat)} probes; while references build (2-{WARM_S:.0f} s): p50 {first(0.5):.1f} ms, "
                f"p99 {first(0.99):.1f} ms{backlog}"
                + (f"; {probes - len(reached)} probes never reached Redis" if len(reached) < probes else "")
            )
        except TimeoutError as exc:
            result.error = str(exc)
        finally:
            worker.stop()
        return result


WARM_S = 10.0  # a latency run's first seconds: its fresh models build their references


def _latencies(sent: list[float], reached: list[float], after_s: float, before_s: float) -> list[float]:
    """Sorted produce-to-Redis latencies (ms) of the probes sent between ``after_s`` and ``before_s`` into the run."""
    return sorted((reached[k] - sent[k]) * 1000 for k in range(len(reached)) if after_s <= sent[k] - sent[0] < before_s)


def _role(role: str, env: dict[str, str], log: Path, capture_stdout: bool = False) -> ChildProcess:
    """One of :mod:`scripts.bench_roles` as a child process."""
    return ChildProcess(
        [sys.executable, "-m", "scripts.bench_roles", role],
        env,
        log,
        capture_stdout=capture_stdout,
        stop_timeout_s=15.0,
    )


def report(results: list[Result], floors: dict[int, float | None]) -> str:
    lines = [
        "",
        "| run | shape | events/s | vs floor | seconds | CPU | peak RSS MB | other load (CPUs) | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        floor = floors.get(r.shape.features)
        rate = f"{r.rate:,.0f}" if r.rate else "FAILED"
        compared = r.what not in ("floor", "latency", "latency floor")
        ratio = f"{r.rate / floor:.3f}" if r.rate and floor and compared else "-"
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else "-"
        secs = f"{r.seconds:.1f}" if r.seconds else "-"
        lines.append(
            f"| {r.what} | {r.shape.label} | {rate} | {ratio} | {secs} | {100 * r.cpu:.0f}% | {rss} | "
            f"{r.other_cpus:.2f} | {r.error or r.extra} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer events per run (about half the time)")
    args = parser.parse_args(argv)
    scale = 0.5 if args.quick else 1.0
    small = Shape(8, 10, 100, int(90_000 * scale))
    single = Shape(8, 10, 1, int(60_000 * scale))
    many = Shape(1000, 20, 100, int(150_000 * scale))
    print(f"driftline bench: {time.strftime('%Y-%m-%d %H:%M')}, {bench_state.machine()}", flush=True)
    results: list[Result] = []
    with EmbeddedStack() as stack:
        bench = Bench(stack, Path(tempfile.mkdtemp(prefix="driftline-bench-")))

        def run(result: Result) -> Result:
            rate = f"{result.rate:,.0f} events/s" if result.rate else "FAILED"
            print(
                f"  {result.what:9} {result.shape.label:34} {rate:>18}  {result.error or result.extra}",
                flush=True,
            )
            results.append(result)
            return result

        floor10 = run(bench.throughput("floor", small))
        run(bench.throughput("driftline", small))
        run(bench.throughput("driftline", Shape(8, 10, 100, 10 * small.events), note=f"{10 * small.events:,} events: "))
        run(bench.throughput("driftline", Shape(8, 10, 100, small.events, segments=5)))
        run(bench.throughput("driftline", single))
        run(bench.throughput("peer", single))
        run(bench.latency(Shape(8, 10, 1, 0), rate=1000, role="floor"))
        run(bench.latency(Shape(8, 10, 1, 0), rate=1000))
        floor20 = run(bench.throughput("floor", many))
        run(bench.throughput("driftline", many))
        run(bench.throughput("driftline", Shape(1000, 20, 1, int(30_000 * scale))))
        run(bench.latency(Shape(1000, 20, 1, 0), rate=200))
        run(bench.throughput("driftline", Shape(int(20_000 * scale), 20, 1, int(30_000 * scale))))  # a flood of ids
    print(report(results, {10: floor10.rate, 20: floor20.rate}))
    print(bench_state.report())
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
