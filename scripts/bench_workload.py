"""The benchmark's workloads: stationary traffic of a :class:`Shape`, as Kafka messages, and the counts it leaves.

:mod:`scripts.bench` runs them; the same seeds give the same events in every run.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from scripts.harness import aio_producer


@dataclass(frozen=True)
class Shape:
    """One workload: models x features, events per message, segments per model, and how many events."""

    models: int
    features: int
    batch: int
    events: int
    segments: int = 0

    @property
    def label(self) -> str:
        seg = f", {self.segments} segments" if self.segments else ""
        return f"{self.models} x {self.features}, {'1 event' if self.batch == 1 else f'{self.batch} events'}/msg{seg}"


def workload(shape: Shape, seed: int = 7) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Stationary predictions (numeric and categorical features, a score, a 0/1 class); outcomes for half."""
    rng = random.Random(seed)
    models = [f"model-{m}" for m in range(shape.models)]
    numeric = [f"f{j}" for j in range(shape.features - shape.features // 5)]
    categorical = [f"c{j}" for j in range(shape.features // 5)]
    start = time.time() - 3600.0
    predictions, outcomes = [], []
    n = shape.events * 2 // 3  # predictions; outcomes for half of them
    for i in range(n):
        model_id = models[i % shape.models]
        score = rng.random()
        features: dict[str, Any] = {name: round(rng.gauss(0.0, 1.0), 5) for name in numeric}
        features |= {name: rng.choice("abcd") for name in categorical}
        event = {
            "model_id": model_id,
            "prediction_id": f"p{i}",
            "features": features,
            "prediction": int(score > 0.5),
            "score": round(score, 5),
            "timestamp": start + i * 1e-3,
        }
        if shape.segments:
            event["segment"] = {"region": f"r{rng.randrange(shape.segments)}"}
        predictions.append(event)
        if i % 2 == 0:
            outcomes.append(
                {
                    "model_id": model_id,
                    "prediction_id": f"p{i}",
                    "label": int(rng.random() < 0.85),
                    "timestamp": start + i * 1e-3 + 0.5,
                }
            )
    return models, predictions, outcomes


def messages(shape: Shape, topic: str, events: list[dict[str, Any]]) -> list[tuple[str, bytes | None, bytes]]:
    """The events as Kafka messages of ``shape.batch`` events of one model each, keyed by model id."""
    if shape.batch == 1:
        return [(topic, e["model_id"].encode(), orjson.dumps(e)) for e in events]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_model.setdefault(event["model_id"], []).append(event)
    chunks = [(m, evs[i : i + shape.batch]) for m, evs in by_model.items() for i in range(0, len(evs), shape.batch)]
    chunks.sort(key=lambda c: c[1][0]["timestamp"])  # models interleaved, as live traffic is
    return [(topic, m.encode(), orjson.dumps(chunk)) for m, chunk in chunks]


def workload_counts(shape: Shape) -> dict[str, tuple[int, int, int]]:
    """Per model, the predictions, outcomes and joins Redis shows once the workload is all counted."""
    models, predictions, outcomes = workload(shape)
    counts = {m: [0, 0] for m in models}
    for e in predictions:
        counts[e["model_id"]][0] += 1
    for e in outcomes:
        counts[e["model_id"]][1] += 1
    return {m: (p, o, o) for m, (p, o) in counts.items()}


def all_counted(seen: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, int, int]]) -> bool:
    """Whether every model's counts reached those of :func:`workload_counts`."""
    return all(all(s >= e for s, e in zip(seen[m], want, strict=True)) for m, want in expected.items())


async def steady_traffic(
    settings: Any, shape: Shape, rate: float, seconds: float, probes: int
) -> tuple[list[float], int, float]:
    """One-event messages at ``rate`` for ``seconds``, probes among them: (probe send times, events, seconds)."""
    rng = random.Random(11)
    names = [f"f{j}" for j in range(shape.features)]
    sent: list[float] = []
    produced = i = 0
    async with aio_producer(settings.kafka_bootstrap, linger_ms=1, acks=1) as producer:
        start = time.perf_counter()
        while (now := time.perf_counter() - start) < seconds:
            while produced < rate * now:
                model_id = f"model-{i % shape.models}"
                ts = time.time()
                event = {
                    "model_id": model_id,
                    "prediction_id": f"l{i}",
                    "score": rng.random(),
                    "prediction": 1,
                    "features": {n: rng.gauss(0.0, 1.0) for n in names},
                    "timestamp": ts,
                }
                await producer.send(settings.topic_predictions, orjson.dumps(event), key=model_id.encode())
                if i % 2 == 0:
                    outcome = {"model_id": model_id, "prediction_id": f"l{i}", "label": 1, "timestamp": ts}
                    await producer.send(settings.topic_outcomes, orjson.dumps(outcome), key=model_id.encode())
                    produced += 1
                produced += 1
                i += 1
            while len(sent) < min(probes, 50 * now):
                ts = time.time()
                event = {
                    "model_id": "probe",
                    "prediction_id": f"probe{len(sent)}",
                    "prediction": 1,
                    "features": {n: rng.gauss(0.0, 1.0) for n in names},
                    "timestamp": ts,
                }
                await producer.send(settings.topic_predictions, orjson.dumps(event), key=b"probe")
                sent.append(ts)
                produced += 1
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - start
        await producer.flush()
    return sent, produced, elapsed
