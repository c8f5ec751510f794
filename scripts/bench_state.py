"""What one model's state costs, measured in process: memory per model and per feature, checkpoint bytes and time.

    .venv/bin/python -m scripts.bench_state

A model of 20 features (16 numeric, 4 categorical) gets ``--predictions``
predictions (outcomes for half), enough that every feature's reference is
built and its windows run. Memory is what ``tracemalloc`` sees allocated for
the state (numpy buffers included); the checkpoint is the model's blob as the
worker writes it (typed MessagePack).
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import subprocess
import time
import tracemalloc
from pathlib import Path

from streams import codec
from streams.events import OutcomeEvent, PredictionEvent
from streams.settings import Settings
from streams.state import ModelState
from streams.tasks import TaskState

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, code {code_version()}"


def code_version() -> str:
    """The commit measured, and whether the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "streams", "detectors"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (f" + uncommitted changes in {len(dirty)} file(s)" if dirty else "")


def _model(model_id: str, predictions: int, features: int, settings: Settings, seed: int = 1) -> ModelState:
    rng = random.Random(seed)
    state = ModelState.create(model_id, settings)
    numeric = features - features // 5
    for i in range(predictions):
        values = {f"f{j}": rng.gauss(0.0, 1.0) for j in range(numeric)}
        values |= {f"c{j}": rng.choice("abcd") for j in range(features - numeric)}
        state.arrive(
            PredictionEvent(model_id, f"p{i}", values, int(rng.random() < 0.5), rng.random(), "", float(i), None)
        )
        if i % 2 == 0:
            state.arrive(OutcomeEvent(model_id, f"p{i}", int(rng.random() < 0.85), float(i) + 0.5))
        if i % 500 == 499:
            state.release(False, settings)
            state.alerts(0.0)
    state.release(True, settings)
    state.alerts(0.0)
    for _ in range(20):
        state.calibrate_pending(20)
    state.buffer.compact()
    return state


def measure(predictions: int = 1500, features: int = 20, models: int = 20) -> dict[str, float]:
    """Memory per model and per feature after ``predictions``, its checkpoint's size and encode time."""
    settings = Settings()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    states = [_model(f"m{k}", predictions, features, settings, seed=k) for k in range(models)]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    allocated = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_model = allocated / models
    blobs, times = [], []
    for state in states:
        started = time.perf_counter()
        blobs.append(codec.encode(state))
        times.append(time.perf_counter() - started)
    probation = ModelState.create("x", settings)
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    flood = [ModelState.create(f"id-{k}", settings) for k in range(2000)]
    for state in flood:
        state.arrive(
            PredictionEvent(state.model_id, "p", {f"f{j}": 1.0 for j in range(features)}, 1, 0.5, "", 1.0, None)
        )
        state.release(True, settings)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del probation
    return {
        "bytes_per_model": per_model,
        "bytes_per_feature": per_model / features,
        "checkpoint_bytes": statistics.median(len(b) for b in blobs),
        "checkpoint_ms": 1000 * statistics.median(times),
        "one_off_model_bytes": sum(s.size_diff for s in snap1.compare_to(snap0, "filename")) / len(flood),
    }


def late_labels(waiting: int = 100_000, per_save: int = 50, saves: int = 10) -> dict[str, float]:
    """A model whose labels come late (``waiting`` predictions wait), then ``per_save`` predictions and labels
    between two saves: what a save writes (its blob and its join stores' changes) and what writing the whole
    state would (format 3's blob), median bytes and ms over ``saves`` saves."""
    task = TaskState(0, Settings(model_probation_events=1))

    def predict(i: int) -> None:
        features = {"x": float(i % 97), "c": "abc"[i % 3]}
        task.arrive(PredictionEvent("m", f"p{i}", features, 1, 0.7, "v1", i / 100, None))

    for i in range(waiting):
        predict(i)
    task.release(True)
    task.saved(task.snapshot())  # the first save writes everything
    rows = []
    for k in range(saves):
        for i in range(waiting + k * per_save, waiting + (k + 1) * per_save):
            predict(i)
            task.arrive(OutcomeEvent("m", f"p{i - waiting // 2}", 1, i / 100))
        task.release(True)
        started = time.perf_counter()
        whole = len(codec.encode(task.models["m"]))
        whole_ms = 1000 * (time.perf_counter() - started)
        started = time.perf_counter()
        snap = task.snapshot()
        save_ms = 1000 * (time.perf_counter() - started)
        task.saved(snap)
        written = sum(map(len, snap.blobs.values())) + sum(sum(map(len, c.fields)) for c in snap.joins.values())
        rows.append((whole, whole_ms, written, save_ms))
    names = ("whole", "whole_ms", "save", "save_ms")
    return {name: statistics.median(row[k] for row in rows) for k, name in enumerate(names)}


def report(predictions: int = 1500, features: int = 20) -> str:
    late = late_labels()
    m = measure(predictions, features)
    return (
        f"\nState of one model of {features} features after {predictions:,} predictions (outcomes for half), "
        f"in process: {m['bytes_per_model'] / 1024:,.0f} KiB in memory ({m['bytes_per_feature'] / 1024:.1f} KiB "
        f"per feature); checkpoint {m['checkpoint_bytes'] / 1024:,.1f} KiB "
        f"({m['checkpoint_bytes'] / features / 1024:.2f} KiB per feature), encoded in "
        f"{m['checkpoint_ms']:.2f} ms (median of 20 models). A model seen once (a one-off id, on probation): "
        f"{m['one_off_model_bytes'] / 1024:.1f} KiB. A model with 100,000 predictions waiting for late labels, "
        f"50 predictions and 50 labels between two saves: a save writes {late['save'] / 1024:,.1f} KiB in "
        f"{late['save_ms']:.2f} ms (the whole state would be {late['whole'] / 1024:,.1f} KiB in "
        f"{late['whole_ms']:.2f} ms; median of 10 saves)."
    )


if __name__ == "__main__":
    print(report())
