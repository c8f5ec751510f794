"""The detection benchmark's tasks: each runs detectors over seeded streams and depends only on its arguments.

They run in worker processes (:func:`run_task` is what the pool maps).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import drift

from detectors.concept_drift import ConceptDriftMonitor
from detectors.missing_rate import MissingRateMonitor
from detectors.reference import build_profile
from scripts.bench_detection_streams import (
    CAT_AFTER,
    CAT_BEFORE,
    CHANGE,
    CONCEPT_KINDS,
    DATA_KINDS,
    HORIZON,
    KSWIN_LEAD,
    NULL_AFTER,
    NULL_BEFORE,
    PHASE,
    REFERENCE_SIZE,
    RIVER_BINARY,
    SMALL_DELTA,
    STATIONARY_BINARY,
    STATIONARY_NUMERIC,
    TRAIN_SIZE,
    concept_stream,
    draw_categories,
    draw_numeric,
    draw_stationary,
    driftline_onsets,
    int_seed,
    monitor_onsets,
    river_onsets,
    rng_for,
)


def delay_task(args: tuple[str, int, int, bool, int]) -> tuple[str, int, int, dict[str, list[int]]]:
    """Alarms of every detector on one data-drift stream: (kind, seed, change, onsets per detector)."""
    kind, ki, seed, with_kswin, n_features = args
    rng = rng_for(1, ki, seed)
    change = CHANGE + int(rng.integers(0, PHASE))
    n = change + HORIZON
    onsets: dict[str, list[int]] = {}
    if kind == "category":
        reference = draw_categories(rng, REFERENCE_SIZE, CAT_BEFORE)
        values: list[Any] = draw_categories(rng, change, CAT_BEFORE) + draw_categories(rng, HORIZON, CAT_AFTER)
        onsets.update(driftline_onsets(values, build_profile(reference), n_features))
        river_values = [1.0 if v == "A" else 0.0 for v in values]
    elif kind == "nulls":
        # The values themselves do not change (the data-drift monitor skips nulls), so only the
        # missing indicator is drawn; driftline's missing-rate monitor is what deploys for it.
        p = np.where(np.arange(n) < change, NULL_BEFORE, NULL_AFTER)
        missing = (rng.random(n) < p).tolist()
        monitor = MissingRateMonitor("x")
        onsets["deployed"] = monitor_onsets(monitor.update, monitor, missing)
        river_values = [1.0 if m else 0.0 for m in missing]
    else:
        reference = draw_numeric(kind, rng, REFERENCE_SIZE, after=False)
        values = np.concatenate(
            [draw_numeric(kind, rng, change, False), draw_numeric(kind, rng, HORIZON, True)]
        ).tolist()
        onsets.update(driftline_onsets(values, build_profile(reference), n_features))
        river_values = values
    onsets["adwin"] = river_onsets(drift.ADWIN(), river_values)
    onsets["adwin_small"] = river_onsets(drift.ADWIN(delta=SMALL_DELTA), river_values)
    onsets["ph"] = river_onsets(drift.PageHinkley(), river_values)
    if with_kswin:
        kswin = drift.KSWIN(seed=int_seed(2, ki, seed))
        onsets["kswin"] = river_onsets(kswin, river_values, start=change - KSWIN_LEAD, stop_after=change)
    return kind, seed, change, onsets


def concept_task(args: tuple[str, int]) -> tuple[str, int, int, dict[str, list[int]], tuple[float, float]]:
    """Alarms on the 0/1 errors of a frozen model over one concept-drift stream, and its error rates."""
    kind, seed = args
    change = CHANGE + int(rng_for(3, list(CONCEPT_KINDS).index(kind), seed).integers(0, PHASE))
    # Sample i of the error stream is sample TRAIN_SIZE + i of the generator; river's sigmoid
    # gives the drifted concept probability 1/2 at 0-based index position - 1, 0.98 one later.
    stream, model = concept_stream(kind, seed, position=TRAIN_SIZE + change + 1)
    it = iter(stream)
    for x, y in itertools.islice(it, TRAIN_SIZE):
        model.learn_one(x, y)
    predict = model.predict_one
    errors = [1.0 if predict(x) != y else 0.0 for x, y in itertools.islice(it, change + HORIZON)]
    onsets: dict[str, list[int]] = {}
    cdm = ConceptDriftMonitor(binary=True)
    onsets["cdm"] = monitor_onsets(cdm.update, cdm, errors)
    for name, cls in RIVER_BINARY.items():
        onsets[name] = river_onsets(cls(), errors)
    rates = (sum(errors[:change]) / change, sum(errors[change:]) / HORIZON)
    return kind, seed, change, onsets, rates


def stationary_task(args: tuple[str, int, int, int, int, int]) -> tuple[str, dict[str, tuple[int, int]]]:
    """False alarms on one stationary stream: {detector: (alarms, events)}."""
    dist, di, stream_id, length, kswin_events, n_features = args
    rng = rng_for(4, di, stream_id)
    out: dict[str, tuple[int, int]] = {}
    if dist in STATIONARY_NUMERIC:
        reference = draw_stationary(dist, rng, REFERENCE_SIZE)
        raw = draw_stationary(dist, rng, length)
        values = raw if isinstance(raw, list) else raw.tolist()
        numeric = dist != "category"
        for name, found in driftline_onsets(values, build_profile(reference), n_features).items():
            out[name] = (len(found), length)
        river_values = values if numeric else [1.0 if v == "A" else 0.0 for v in values]
        out["adwin"] = (len(river_onsets(drift.ADWIN(), river_values)), length)
        out["adwin_small"] = (len(river_onsets(drift.ADWIN(delta=SMALL_DELTA), river_values)), length)
        out["ph"] = (len(river_onsets(drift.PageHinkley(), river_values)), length)
        if kswin_events:
            kswin = drift.KSWIN(seed=int_seed(5, di, stream_id))
            out["kswin"] = (len(river_onsets(kswin, river_values[:kswin_events])), min(kswin_events, length))
        return dist, out
    _, p = STATIONARY_BINARY[dist]
    flags = (rng.random(length) < p).tolist()
    if dist.startswith("missing"):
        monitor = MissingRateMonitor("x")
        out["mrm"] = (len(monitor_onsets(monitor.update, monitor, flags)), length)
        return dist, out
    errors = [1.0 if f else 0.0 for f in flags]
    cdm = ConceptDriftMonitor(binary=True)
    out["cdm"] = (len(monitor_onsets(cdm.update, cdm, errors)), length)
    for name, cls in RIVER_BINARY.items():
        out[name] = (len(river_onsets(cls(), errors)), length)
    return dist, out


def run_task(task: tuple[str, Any]) -> tuple[str, Any, float]:
    """Run one task; return its kind, its result and the CPU seconds it took."""
    t0 = time.process_time()
    what, args = task
    fn = {"delay": delay_task, "concept": concept_task, "stationary": stationary_task}[what]
    return what, fn(args), time.process_time() - t0


@dataclass(frozen=True)
class Plan:
    """What one benchmark run covers: the model size, seeds per row, stationary streams and worker processes."""

    features: int
    seeds: int
    kswin_seeds: int
    concept_seeds: int
    stat_streams: int
    stat_len: int
    bin_streams: int
    bin_len: int
    kswin_fa: int  # KSWIN events per stationary distribution
    workers: int

    @classmethod
    def of(cls, features: int, seeds: int | None, quick: bool, workers: int) -> Plan:
        """The full plan, or the ``quick`` one; ``seeds`` overrides the seeds per drift kind."""
        seeds = seeds or (8 if quick else 50)
        stat_streams, stat_len = (2, 60_000) if quick else (5, 200_000)
        bin_streams, bin_len = (2, 60_000) if quick else (4, 250_000)
        return cls(
            features,
            seeds,
            min(seeds, 3 if quick else 10),
            seeds,
            stat_streams,
            stat_len,
            bin_streams,
            bin_len,
            3_000 if quick else 20_000,
            workers,
        )

    def tasks(self) -> list[tuple[str, Any]]:
        """Every task, in the order the benchmark always ran them."""
        tasks: list[tuple[str, Any]] = []
        for di, dist in enumerate(STATIONARY_NUMERIC):
            for s in range(self.stat_streams):
                kswin = self.kswin_fa if s == 0 else 0
                tasks.append(("stationary", (dist, di, s, self.stat_len, kswin, self.features)))
        for di, dist in enumerate(STATIONARY_BINARY):
            for s in range(self.bin_streams):
                tasks.append(("stationary", (dist, 100 + di, s, self.bin_len, 0, self.features)))
        for kind in CONCEPT_KINDS:
            for seed in range(self.concept_seeds):
                tasks.append(("concept", (kind, seed)))
        for ki, kind in enumerate(DATA_KINDS):
            for seed in range(self.seeds):
                tasks.append(("delay", (kind, ki, seed, seed < self.kswin_seeds, self.features)))
        return tasks


def run_all(plan: Plan) -> tuple[list[tuple[str, Any]], dict[str, float], float]:
    """Run the plan's tasks (in ``plan.workers`` forked processes); return results, CPU seconds per kind, wall time."""
    t0 = time.perf_counter()
    cpu: dict[str, float] = {}
    results: list[tuple[str, Any]] = []
    if plan.workers > 1:
        with mp.get_context("fork").Pool(plan.workers) as pool:
            for what, res, used in pool.imap_unordered(run_task, plan.tasks()):
                results.append((what, res))
                cpu[what] = cpu.get(what, 0.0) + used
    else:
        for task in plan.tasks():
            what, res, used = run_task(task)
            results.append((what, res))
            cpu[what] = cpu.get(what, 0.0) + used
    return results, cpu, time.perf_counter() - t0
