"""What history costs in Redis, and how fast the dashboard is with many models.

    python -m scripts.bench_dashboard --models 1000 --features 20

1. History memory: a model of ``--features`` numeric features is fed through
   120 intervals of event time; the bytes per point of its two streams
   (``MEMORY USAGE``) are measured, then a stream filled to the default cap
   (10,080 points, a week at a point a minute) with copies of its points.
2. The dashboard with ``--models`` models: their hashes and 60 history points
   each go to Redis, a real worker serves the dashboard, and headless Chromium
   loads the overview and one model page; the API's answers are timed too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
import redis

from scripts.harness import WorkerProcess, run_env
from scripts.harness.browser import browser, shown
from streams.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from streams.history import HistoryPolicy, HistoryRecorder
from streams.keys import RedisKeys
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from tests.streams.feeding import prediction


def history_bytes(url: str, features: int) -> tuple[float, int]:
    """Bytes per point of one model's history, and of a full week's streams at the default cap."""
    keys, settings = RedisKeys("bench:"), Settings(model_probation_events=1, max_disorder_s=0.0)
    rng = random.Random(1)
    state = ModelState.create("m", settings)

    async def feed() -> None:
        client = redis.asyncio.Redis.from_url(url)
        writer = RedisStateWriter(client, keys, 100, HistoryRecorder(keys, HistoryPolicy.of(settings)))
        for i in range(120 * 60):
            state.arrive(prediction(str(i), 1e9 + i, 1, {f"f{k}": rng.gauss(0, 1) for k in range(features)}))
            if i % 60 == 59:
                state.release(False, settings)
                await writer.write([state], [], now=0.0)
        await client.aclose()

    asyncio.run(feed())
    client = redis.Redis.from_url(url)
    streams = (keys.history("m"), keys.feature_history("m"))
    points = client.xlen(streams[0])
    per_point = sum(client.memory_usage(k, samples=0) for k in streams) / points
    cap = HistoryPolicy.of(Settings()).max_points
    entries = [client.xrevrange(k, count=1)[0][1] for k in streams]  # the newest: every feature scored
    pipe = client.pipeline(transaction=False)
    for n in range(cap):
        for key, fields in zip(("w:h", "w:f"), entries, strict=True):
            pipe.xadd(key, fields, maxlen=cap, approximate=True)
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()
    week = sum(client.memory_usage(k, samples=0) for k in ("w:h", "w:f"))
    return per_point, week


def fill_models(client: redis.Redis, keys: RedisKeys, models: int) -> None:
    """``models`` model hashes with 60 history points each, as a worker writes them."""
    rng = random.Random(2)
    pipe = client.pipeline(transaction=False)
    for n in range(models):
        model_id = f"model-{n:04d}"
        status = rng.choice(["ok"] * 18 + ["warning", "critical"])
        pipe.sadd(keys.models, model_id)
        pipe.hset(
            keys.model(model_id),
            mapping={
                "predictions": 6000,
                "outcomes": 6000,
                "joined": 6000,
                "status": status,
                "open_alerts": int(status != "ok"),
                "metric": "accuracy",
                "accuracy": rng.random(),
            },
        )
        for i in range(60):
            point = {
                "t": 1e9 + 60 * i,
                "status": "ok",
                "open_alerts": 0,
                "predictions": 100 * i,
                "outcomes": 100 * i,
                "joined": 100 * i,
                "metric": "accuracy",
                "accuracy": 0.8 + rng.random() / 10,
            }
            pipe.xadd(keys.history(model_id), {"p": orjson.dumps(point)})
        if n % 100 == 99:
            pipe.execute()
    pipe.execute()


def timed_get(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - began, len(body)


async def page_times(base: str, log: Path) -> tuple[float, float, dict]:
    async with browser(log) as page:
        began = time.perf_counter()
        await page.goto(f"{base}/dashboard#/")
        await page.until("document.body.dataset.view === 'overview' && document.body.dataset.ready === '1'", 60)
        overview_s = time.perf_counter() - began
        found = await shown(page)
        began = time.perf_counter()
        await page.evaluate("location.hash = '#/model/model-0001'")
        await page.until("document.body.dataset.view === 'model' && document.body.dataset.ready === '1'", 60)
        return overview_s, time.perf_counter() - began, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    args = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="driftline-bench-dashboard-"))
    with EmbeddedRedis(log_path=logs / "redis.log") as server, EmbeddedBroker(log_path=logs / "tansu.log") as broker:
        per_point, week = history_bytes(server.url, args.features)
        print(
            f"history of a {args.features}-feature model: {per_point:.0f} bytes per point (both streams); "
            f"a full week at the default cap (10,080 points): {week / 2**20:.1f} MiB"
        )
        port = free_port()
        env = run_env(broker.bootstrap, server.url, "bench", partitions=1) | {"DRIFTLINE_WEB_PORT": str(port)}
        keys = RedisKeys(env["DRIFTLINE_REDIS_PREFIX"])
        fill_models(redis.Redis.from_url(server.url), keys, args.models)
        with WorkerProcess(env, logs / "worker.log").start() as worker:
            worker.ready(90)
            base = f"http://127.0.0.1:{port}"
            for path in (
                "/api/models",
                "/api/models?limit=50&sort=status",
                "/api/history?points=60&models=" + ",".join(f"model-{n:04d}" for n in range(50)),
            ):
                timed_get(base + path)  # warm
                seconds, size = min(timed_get(base + path) for _ in range(5))
                print(f"GET {path[:60]}: {seconds * 1000:.0f} ms, {size / 1024:.0f} KiB")
            overview_s, model_s, found = asyncio.run(page_times(base, logs / "chromium.log"))
            print(
                f"Chromium, {args.models} models: overview (50 a page, worst first, sparklines) ready in "
                f"{overview_s * 1000:.0f} ms ({len(found['models'])} rows), a model page in {model_s * 1000:.0f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
