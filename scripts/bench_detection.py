#!/usr/bin/env python
"""Detection benchmark: driftline's detectors against river's, on the same seeded streams.

Run from the repository root::

    .venv/bin/python scripts/bench_detection.py [--features F] [--seeds N] [--quick] [--workers W]

Prints markdown tables of

* detection delay: events after a change until the first alarm (median and max over
  seeds) and how many seeds detected within the horizon, for mean shifts of 0.1, 0.25,
  0.5 and 1 sigma, a doubled variance, a category mix change, null injection, a score
  shift, and concept drift on river's Agrawal, SEA and Hyperplane generators;
* alarms raised before the change (false alarms, reported apart from detections);
* false alarms per million events on stationary streams, with the number of events
  each rate rests on.

driftline's detectors run with their defaults, as driftline creates them. Data drift:
``WindowedDriftMonitor`` against a profile built by ``build_profile`` from a
separate sample of 10,000 reference values, with ``n_features=F`` (``--features``, default
20: the model size over which the per-model budget of one false alarm per 1e6 events is
split). As deployed it runs two detectors and holds its condition (``active``) while
either does: windowed tests (KS, PSI, Wasserstein on tumbling windows of 500; chi-square
and PSI for categories) and ``MeanShiftCusum`` (a two-sided CUSUM bank on normal scores
against the profile, tuned to shifts of 0.1/0.25/0.5/1 std), the CUSUM with three
quarters of the feature's budget and the windowed tests with a quarter (``CUSUM_SHARE``). The tables show the CUSUM alone (``monitor.cusum.active`` of the
deployed monitor), the windowed tests alone (a separate monitor with ``sequential=False``)
and the deployed monitor. Also ``MissingRateMonitor`` and ``ConceptDriftMonitor`` (DDM on
0/1 errors, gated). river's detectors run at their defaults (only the random seed of KSWIN
is set, so runs repeat), plus ADWIN with ``delta=1e-5``, whose false-alarm rate is nearer
driftline's budget.

Everything is seeded (numpy ``Generator``, ``random.Random``, river generator seeds):
the same arguments print the same tables, whatever the number of worker processes.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import river  # noqa: E402
from river import compose, drift, linear_model, preprocessing, tree  # noqa: E402
from river.datasets import synth  # noqa: E402
from river.drift import binary  # noqa: E402

from detectors.concept_drift import ConceptDriftMonitor  # noqa: E402
from detectors.cusum import SHIFTS, MeanShiftCusum  # noqa: E402
from detectors.cusum_calibration import thresholds  # noqa: E402
from detectors.missing_rate import MissingRateMonitor  # noqa: E402
from detectors.reference import build_profile  # noqa: E402
from detectors.windowed_tests import CUSUM_SHARE, WindowedDriftMonitor  # noqa: E402

CHANGE = 5000  # the change happens at event CHANGE + u, u uniform in [0, PHASE) per seed
PHASE = 500  # ... so it falls at any phase of the 500-event windows and check intervals
HORIZON = 5000  # a detection counts if it comes within this many events after the change
REFERENCE_SIZE = 10_000  # values behind the windowed monitor's reference profile
BUDGET_EVENTS = WindowedDriftMonitor.budget_events  # per model: events between false alarms (default 1e6)
SMALL_DELTA, SMALL_DELTA_LABEL = 1e-5, "1e-5"  # a second ADWIN: fewer false alarms than its default 0.002
KSWIN_LEAD = 1000  # KSWIN (window 100) is fed from this many events before the change
TRAIN_SIZE = 3000  # samples the frozen model learns from before the monitored stream
CATEGORIES = ("A", "B", "C", "D", "E")
CAT_BEFORE = (0.1, 0.3, 0.3, 0.2, 0.1)
CAT_AFTER = (0.3,) + tuple(p * 0.7 / 0.9 for p in CAT_BEFORE[1:])  # A: 10% -> 30%, the rest scaled
NULL_BEFORE, NULL_AFTER = 0.01, 0.20
SCORE_BEFORE, SCORE_AFTER = (2.0, 5.0), (3.0, 4.0)  # Beta parameters

DATA_KINDS: dict[str, str] = {
    "mean_0.1": "mean shift 0.1 sigma",
    "mean_0.25": "mean shift 0.25 sigma",
    "mean_0.5": "mean shift 0.5 sigma",
    "mean_1": "mean shift 1 sigma",
    "var_x2": "variance x2 (same mean)",
    "category": "category mix: A 10% -> 30%",
    "nulls": "null injection: 1% -> 20% nulls",
    "score": "score Beta(2,5) -> Beta(3,4)",
}
CONCEPT_KINDS: dict[str, str] = {
    "agrawal": "Agrawal f0 -> f2, Hoeffding tree",
    "sea": "SEA variant 0 -> 1, logistic regression",
    "hyperplane": "Hyperplane seed a -> seed b, logistic regression",
}
STATIONARY_NUMERIC: dict[str, str] = {
    "normal": "normal N(0, 1)",
    "lognormal": "lognormal (0, 1)",
    "uniform": "uniform [0, 1)",
    "integer": "integer Poisson(4)",
    "category": "categorical (5 categories; river: 0/1 indicator of A, 10%)",
}
STATIONARY_BINARY: dict[str, tuple[str, float]] = {
    "missing_1": ("missing indicator, 1% missing", 0.01),
    "missing_5": ("missing indicator, 5% missing", 0.05),
    "errors_2": ("0/1 errors, 2% error rate", 0.02),
    "errors_5": ("0/1 errors, 5% error rate", 0.05),
    "errors_15": ("0/1 errors, 15% error rate", 0.15),
    "errors_30": ("0/1 errors, 30% error rate", 0.30),
}
DATA_COLUMNS = ("cusum", "wdm", "deployed", "adwin", "adwin_small", "ph", "kswin")
DATA_HEADERS = {
    "cusum": "driftline CUSUM",
    "wdm": "driftline windowed tests",
    "deployed": "driftline (as deployed: windowed + CUSUM)",
    "adwin": "river ADWIN",
    "adwin_small": f"river ADWIN (delta={SMALL_DELTA_LABEL})",
    "ph": "river PageHinkley",
    "kswin": "river KSWIN (subsample)",
}
CONCEPT_COLUMNS = ("cdm", "ddm", "eddm", "hddma", "hddmw")
CONCEPT_HEADERS = {
    "cdm": "driftline ConceptDriftMonitor",
    "ddm": "river DDM",
    "eddm": "river EDDM",
    "hddma": "river HDDMA",
    "hddmw": "river HDDMW",
}
BINARY_COLUMNS = ("mrm",) + CONCEPT_COLUMNS
BINARY_HEADERS = {"mrm": "driftline MissingRateMonitor", **CONCEPT_HEADERS}
RIVER_BINARY: dict[str, Callable[[], Any]] = {
    "ddm": binary.DDM, "eddm": binary.EDDM, "hddma": binary.HDDMA, "hddmw": binary.HDDMW,
}
SALT = 20_240_611


def rng_for(*key: int) -> np.random.Generator:
    return np.random.default_rng([SALT, *key])


def int_seed(*key: int) -> int:
    return int(rng_for(*key).integers(0, 2**31 - 1))


# ---------------------------------------------------------------------------------------
# Running one detector over a stream: the event indices at which it raises an alarm.
# driftline's monitors raise an alarm when ``active`` turns on (an episode); river's
# raise one on every ``drift_detected`` (they reset themselves after it).


def monitor_onsets(update: Callable[[Any, float], None], monitor: Any, values: Iterable[Any]) -> list[int]:
    onsets, prev = [], False
    for i, x in enumerate(values):
        update(x, float(i))
        on = monitor.active
        if on and not prev:
            onsets.append(i)
        prev = on
    return onsets


def river_onsets(detector: Any, values: list[float], start: int = 0, stop_after: int | None = None) -> list[int]:
    """Alarms of a river detector fed ``values[start:]``; stops at the first alarm at or after ``stop_after``."""
    onsets, update = [], detector.update
    for i in range(start, len(values)):
        update(values[i])
        if detector.drift_detected:
            onsets.append(i)
            if stop_after is not None and i >= stop_after:
                break
    return onsets


def driftline_onsets(values: list[Any], profile: Any, n_features: int) -> dict[str, list[int]]:
    """driftline's data-drift monitor on one stream: as deployed, its CUSUM alone, its windowed tests alone.

    The deployed ``WindowedDriftMonitor`` (``sequential=True``, the default) gives "deployed"
    (its ``active``); a copy of its CUSUM, fresh, fed the same values, gives "cusum" (what
    ``cusum.active`` does inside it). The windowed tests alone come from a second monitor built
    with ``sequential=False`` (same profile, budget and calibration). A categorical profile has
    no CUSUM: the deployed monitor is then the windowed tests, and there is no "cusum" entry.
    Missing values (``None``) are skipped, as driftline does (the missing rate has its own
    monitor). Each detector takes the whole stream in one ``update_many`` call, whose changes are
    those of one value at a time (any split gives the same).
    """
    deployed = WindowedDriftMonitor("x", profile, n_features=n_features)
    cusum = copy.deepcopy(deployed.cusum)
    present = np.array([i for i, x in enumerate(values) if x is not None], dtype=np.int64)
    column = np.array([values[i] for i in present], dtype=np.float64 if cusum is not None else object)
    ts = present.astype(np.float64)

    def onsets(changes: list[Any]) -> list[int]:
        return [int(present[c.index]) for c in changes if c.active]

    out = {"deployed": onsets(deployed.update_many(column, ts))}
    if cusum is None:
        out["wdm"] = out["deployed"]
        return out
    windowed = WindowedDriftMonitor(  # the deployed monitor's windowed tests: the same share of the budget
        "x", profile, n_features=n_features, sequential=False, budget_events=BUDGET_EVENTS / (1 - CUSUM_SHARE)
    )
    out["wdm"] = onsets(windowed.update_many(column, ts))
    out["cusum"] = onsets(cusum.update_many(column, ts))
    return out


# ---------------------------------------------------------------------------------------
# Streams


def draw_numeric(kind: str, rng: np.random.Generator, n: int, after: bool) -> np.ndarray:
    if kind.startswith("mean_"):
        return rng.normal(float(kind.split("_")[1]) if after else 0.0, 1.0, n)
    if kind == "var_x2":
        return rng.normal(0.0, math.sqrt(2.0) if after else 1.0, n)
    if kind == "nulls":
        return rng.normal(0.0, 1.0, n)
    if kind == "score":
        a, b = SCORE_AFTER if after else SCORE_BEFORE
        return rng.beta(a, b, n)
    raise ValueError(kind)


def draw_categories(rng: np.random.Generator, n: int, shares: tuple[float, ...]) -> list[str]:
    idx = rng.choice(len(CATEGORIES), size=n, p=np.asarray(shares) / sum(shares))
    return [CATEGORIES[i] for i in idx]


def draw_stationary(dist: str, rng: np.random.Generator, n: int) -> Any:
    if dist == "normal":
        return rng.normal(0.0, 1.0, n)
    if dist == "lognormal":
        return rng.lognormal(0.0, 1.0, n)
    if dist == "uniform":
        return rng.random(n)
    if dist == "integer":
        return rng.poisson(4.0, n).astype(np.float64)
    if dist == "category":
        return draw_categories(rng, n, CAT_BEFORE)
    raise ValueError(dist)


class ConceptDriftStream(synth.ConceptDriftStream):
    """river's ConceptDriftStream, with the exponent of its sigmoid clamped.

    In river 0.26.1, ``ConceptDriftStream(width=1, position=p)`` raises ``OverflowError``
    (``math.exp`` of ``4 * (p - i)``) for every ``p`` above about 178. This copy of its
    ``__iter__`` only clamps that exponent at 700: the same random draws, the same
    samples (the drift probability far before the change is ``1e-304`` instead of
    ``1e-2000``).
    """

    def __iter__(self):
        rng = random.Random(self.seed)
        stream, drifted = iter(self.stream), iter(self.drift_stream)
        i = 0
        while True:
            i += 1
            v = -4.0 * float(i - self.position) / float(self.width)
            p = 1.0 / (1.0 + math.exp(min(v, 700.0)))
            try:
                x, y = next(stream) if rng.random() > p else next(drifted)
            except StopIteration:
                break
            yield x, y


def concept_stream(kind: str, seed: int, position: int) -> tuple[Any, Any]:
    ci = list(CONCEPT_KINDS).index(kind)
    s = [int_seed(7, ci, seed, k) for k in range(3)]
    if kind == "agrawal":
        a, b = synth.Agrawal(classification_function=0, seed=s[0]), synth.Agrawal(classification_function=2, seed=s[1])
        model = tree.HoeffdingTreeClassifier()
    elif kind == "sea":
        a, b = synth.SEA(variant=0, seed=s[0]), synth.SEA(variant=1, seed=s[1])
        model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    elif kind == "hyperplane":
        a, b = synth.Hyperplane(seed=s[0]), synth.Hyperplane(seed=s[1])
        model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    else:
        raise ValueError(kind)
    return ConceptDriftStream(stream=a, drift_stream=b, position=position, width=1, seed=s[2]), model


# ---------------------------------------------------------------------------------------
# Tasks (run in worker processes; each depends only on its arguments)


def delay_task(args: tuple[str, int, int, bool, int]) -> tuple[str, int, int, dict[str, list[int]]]:
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
        values = np.concatenate([draw_numeric(kind, rng, change, False), draw_numeric(kind, rng, HORIZON, True)]).tolist()
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
    t0 = time.process_time()
    what, args = task
    fn = {"delay": delay_task, "concept": concept_task, "stationary": stationary_task}[what]
    return what, fn(args), time.process_time() - t0


# ---------------------------------------------------------------------------------------
# Summaries


def first_after(onsets: list[int], change: int) -> int | None:
    """Delay (post-change events seen when the alarm fired: 1 = on the first changed event)."""
    for i in onsets:
        if i >= change:
            delay = i - change + 1
            return delay if delay <= HORIZON else None
    return None


def delay_cell(delays: list[int | None]) -> str:
    if not delays:
        return "not run"
    n = len(delays)
    hits = sorted(d for d in delays if d is not None)
    ranked = hits + [math.inf] * (n - len(hits))
    med = statistics.median(ranked)
    med_s = f">{HORIZON:,}" if math.isinf(med) else f"{med:,.0f}"
    max_s = f"{hits[-1]:,}" if hits else "-"
    return f"{med_s} / {max_s} · {len(hits)}/{n}"


def pre_cell(counts: list[int], events: int) -> str:
    if not counts:
        return "not run"
    return f"{sum(counts)} ({sum(1 for c in counts if c)}/{len(counts)}) in {events:,}"


def rate_cell(alarms: int, events: int) -> str:
    if not events:
        return "n/a"
    if not alarms:  # rule of three: the 95% upper bound of a rate with no event in n trials is 3/n
        return f"0 ({alarms}/{events / 1e6:g}M; < {3 / events * 1e6:,.1f})"
    return f"{alarms / events * 1e6:,.1f} ({alarms}/{events / 1e6:g}M)"


def model_rate_cell(alarms: int, events: int, features: int) -> str:
    """The rate of a model of ``features`` features like this one (the per-feature rate times ``features``)."""
    if not events:
        return "n/a"
    if not alarms:
        return f"< {3 / events * 1e6 * features:,.1f}"
    return f"{alarms / events * 1e6 * features:,.1f}"


def rate_rows(
    fa: dict[tuple[str, str], tuple[int, int]], streams: dict[str, str], columns: tuple[str, ...]
) -> tuple[list[list[str]], dict[str, list[int]]]:
    """One row of false-alarm rates per stationary stream, and each column's (alarms, events) totals."""
    rows, totals = [], {c: [0, 0] for c in columns}
    for dist, label in streams.items():
        row = [label]
        for det in columns:
            alarms, events = fa.get((dist, det), (0, 0))
            totals[det][0] += alarms
            totals[det][1] += events
            row.append(rate_cell(alarms, events))
        rows.append(row)
    return rows, totals


def chance_cell(alarms: int, events: int) -> str:
    """Probability of at least one false alarm within the horizon, at the measured rate."""
    if not events:
        return "n/a"
    if not alarms:
        return f"< {1 - math.exp(-3 / events * HORIZON):.1%}"
    return f"{1 - math.exp(-alarms / events * HORIZON):.1%}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--features", type=int, default=20,
        help="model size: the per-model false-alarm budget (one per 1e6 events) is split over this many features",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per drift kind (default 50; --quick: 8)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 2), help="worker processes")
    args = parser.parse_args()
    if args.features < 1:
        parser.error("--features must be at least 1")
    features = args.features
    seeds = args.seeds or (8 if args.quick else 50)
    kswin_seeds = min(seeds, 3 if args.quick else 10)
    concept_seeds = seeds
    stat_streams, stat_len = (2, 60_000) if args.quick else (5, 200_000)
    bin_streams, bin_len = (2, 60_000) if args.quick else (4, 250_000)
    kswin_fa = 3_000 if args.quick else 20_000  # KSWIN events per stationary distribution

    tasks: list[tuple[str, Any]] = []
    for di, dist in enumerate(STATIONARY_NUMERIC):
        for s in range(stat_streams):
            tasks.append(("stationary", (dist, di, s, stat_len, kswin_fa if s == 0 else 0, features)))
    for di, dist in enumerate(STATIONARY_BINARY):
        for s in range(bin_streams):
            tasks.append(("stationary", (dist, 100 + di, s, bin_len, 0, features)))
    for kind in CONCEPT_KINDS:
        for seed in range(concept_seeds):
            tasks.append(("concept", (kind, seed)))
    for ki, kind in enumerate(DATA_KINDS):
        for seed in range(seeds):
            tasks.append(("delay", (kind, ki, seed, seed < kswin_seeds, features)))

    t0 = time.perf_counter()
    cpu: dict[str, float] = {}
    results: list[tuple[str, Any]] = []
    if args.workers > 1:
        with mp.get_context("fork").Pool(args.workers) as pool:
            for what, res, used in pool.imap_unordered(run_task, tasks):
                results.append((what, res))
                cpu[what] = cpu.get(what, 0.0) + used
    else:
        for task in tasks:
            what, res, used = run_task(task)
            results.append((what, res))
            cpu[what] = cpu.get(what, 0.0) + used
    wall = time.perf_counter() - t0

    # --- detection delay, data drift
    delays: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    pre: dict[tuple[str, str], list[tuple[int, int]]] = {}
    pre_events: dict[tuple[str, str], int] = {}
    for what, res in results:
        if what != "delay":
            continue
        kind, seed, change, onsets = res
        for det, found in onsets.items():
            delays.setdefault((kind, det), []).append((seed, first_after(found, change)))
            pre.setdefault((kind, det), []).append((seed, sum(1 for i in found if i < change)))
            fed = KSWIN_LEAD if det == "kswin" else change
            pre_events[(kind, det)] = pre_events.get((kind, det), 0) + fed

    def by_seed(pairs: list[tuple[int, Any]]) -> list[Any]:
        return [v for _, v in sorted(pairs)]

    per_feature = BUDGET_EVENTS * features
    cusum_budget = per_feature / CUSUM_SHARE
    h = thresholds(np.asarray(SHIFTS) / 2, cusum_budget, REFERENCE_SIZE)
    print(f"# driftline detection benchmark (river {river.__version__}, numpy {np.__version__})\n")
    print(
        f"Model size: **{features} feature{'s' if features > 1 else ''}** (`--features {features}`). The per-model "
        f"budget of one false alarm per {BUDGET_EVENTS:,.0f} events is split over them: each feature's monitor "
        f"may raise one per {per_feature:,.0f} events ({1e6 / per_feature:g} per million), {CUSUM_SHARE:.0%} spent "
        f"by its CUSUM (thresholds h = {', '.join(f'{x:.1f}' for x in h)} for shifts of "
        f"{', '.join(f'{x:g}' for x in SHIFTS)} std, one false alarm per {cusum_budget:,.0f} events) and the rest "
        "by its windowed tests. Every stream below is one feature: a model of "
        f"{features} such feature{'s' if features > 1 else ''} raises {features} times the per-feature rate.\n"
    )
    print(f"## Detection delay: events after the change, median / max over seeds · seeds detected within {HORIZON:,}\n")
    rows = []
    for kind, label in DATA_KINDS.items():
        row = [label]
        for det in DATA_COLUMNS:
            d = by_seed(delays.get((kind, det), []))
            row.append(delay_cell(d) if d else "n/a")
        rows.append(row)
    print(table(["drift"] + [DATA_HEADERS[c] for c in DATA_COLUMNS], rows))
    print(
        "\nCUSUM: the deployed monitor's `cusum.active` (its onsets, not the deployed monitor's). Windowed "
        "tests: a separate `WindowedDriftMonitor(..., sequential=False)`. As deployed: the monitor's `active`, "
        "windowed tests or CUSUM. Null injection: driftline's column is `MissingRateMonitor` (the data-drift "
        "monitor skips nulls); river gets the 0/1 missing indicator. Category mix: a categorical profile has "
        "no CUSUM, so driftline as deployed is the windowed tests (chi-square/PSI); river gets the 0/1 indicator "
        f"of category A. KSWIN ran on {kswin_seeds} seeds per row, fed from {KSWIN_LEAD:,} events before "
        "the change (its window is 100 values, so earlier events cannot change its state).\n"
    )

    print("## Concept drift (0/1 errors of a model trained on 3,000 samples, then frozen)\n")
    cdelays: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    cpre: dict[tuple[str, str], list[tuple[int, int]]] = {}
    cpre_events: dict[str, int] = {}
    crates: dict[str, list[tuple[float, float]]] = {}
    for what, res in results:
        if what != "concept":
            continue
        kind, seed, change, onsets, rates = res
        crates.setdefault(kind, []).append(rates)
        cpre_events[kind] = cpre_events.get(kind, 0) + change
        for det, found in onsets.items():
            cdelays.setdefault((kind, det), []).append((seed, first_after(found, change)))
            cpre.setdefault((kind, det), []).append((seed, sum(1 for i in found if i < change)))
    rows = []
    for kind, label in CONCEPT_KINDS.items():
        r = crates[kind]
        before, after = statistics.mean(a for a, _ in r), statistics.mean(b for _, b in r)
        row = [label, f"{before:.1%} -> {after:.1%}"]
        row += [delay_cell(by_seed(cdelays[(kind, det)])) for det in CONCEPT_COLUMNS]
        rows.append(row)
    print(table(["stream", "error rate before -> after"] + [CONCEPT_HEADERS[c] for c in CONCEPT_COLUMNS], rows))

    print("\n## Alarms before the change (false alarms): total alarms (seeds with any / seeds) in events fed\n")
    rows = []
    for kind, label in DATA_KINDS.items():
        row = [label]
        for det in DATA_COLUMNS:
            c = by_seed(pre.get((kind, det), []))
            row.append(pre_cell(c, pre_events.get((kind, det), 0)) if c else "n/a")
        rows.append(row)
    print(table(["drift"] + [DATA_HEADERS[c] for c in DATA_COLUMNS], rows))
    print()
    rows = []
    for kind, label in CONCEPT_KINDS.items():
        rows.append([label] + [pre_cell(by_seed(cpre[(kind, det)]), cpre_events[kind]) for det in CONCEPT_COLUMNS])
    print(table(["stream"] + [CONCEPT_HEADERS[c] for c in CONCEPT_COLUMNS], rows))

    # --- false alarms on stationary streams
    fa: dict[tuple[str, str], list[int]] = {}
    for what, res in results:
        if what != "stationary":
            continue
        dist, out = res
        for det, (alarms, events) in out.items():
            acc = fa.setdefault((dist, det), [0, 0])
            acc[0] += alarms
            acc[1] += events
    print(
        "\n## False alarms per million stationary events (alarms / events; with no alarm, the 95% upper "
        "bound 3/events)\n\nEach stream is one feature. The row after **all** scales the overall rate to a "
        f"model of {features} feature{'s' if features > 1 else ''} like it, to compare with the per-model budget "
        f"of {1e6 / BUDGET_EVENTS:g} per million. The last row turns the overall (one-feature) rate into the "
        f"chance that a stationary stream raises at least one alarm within {HORIZON:,} events: a detector whose "
        "chance is high also 'detects' a change within the horizon by accident, so its delays above mean "
        "little. The CUSUM has no categorical stream (a categorical profile has none).\n"
    )
    rows, totals = rate_rows(fa, STATIONARY_NUMERIC, DATA_COLUMNS)
    rows.append(["**all**"] + [rate_cell(*totals[c]) for c in DATA_COLUMNS])
    plural = "s" if features > 1 else ""
    label = f"per model of {features} such feature{plural} (all x {features}; budget {1e6 / BUDGET_EVENTS:g})"
    rows.append([label] + [model_rate_cell(*totals[c], features) for c in DATA_COLUMNS])
    rows.append([f"P(false alarm within {HORIZON:,} events)"] + [chance_cell(*totals[c]) for c in DATA_COLUMNS])
    print(table(["stream"] + [DATA_HEADERS[c] for c in DATA_COLUMNS], rows))
    print()
    rows, totals = rate_rows(fa, {dist: label for dist, (label, _) in STATIONARY_BINARY.items()}, BINARY_COLUMNS)
    rows.append(["**all**"] + [rate_cell(*totals[c]) for c in BINARY_COLUMNS])
    rows.append([f"P(false alarm within {HORIZON:,} events)"] + [chance_cell(*totals[c]) for c in BINARY_COLUMNS])
    print(table(["stream"] + [BINARY_HEADERS[c] for c in BINARY_COLUMNS], rows))

    print(
        f"""
## Method

Each drift row is {seeds} seeded streams (numpy `Generator`s keyed by drift kind and seed): the
change happens at event 5,000 + u, with u uniform in 0..{PHASE - 1} per seed, so that it falls at
any phase of the windowed tests' 500-event tumbling windows, of the CUSUM's {MeanShiftCusum.chunk}-value
chunks (it decides at the exact value; a chunk only restarts its running minimum) and of
MissingRateMonitor's 16-event checks; before it every monitor has seen at least 5,000 events
(MissingRateMonitor's baseline is the first 500, the others' is a reference sample). A detection
is the first alarm at or after the change; the delay is the number of post-change events seen
when it fires (1 = on the first changed event) and counts only within {HORIZON:,} events.
Median over all seeds (a miss counts as beyond the horizon, hence ">{HORIZON:,}" when half or
more miss), max over the seeds that detected. An alarm before the change is a false alarm,
counted in the second table and never as a detection. For driftline's monitors an alarm is
`active` turning on (an episode); an episode already open at the change does not count as a
detection, a new onset is needed. For river's detectors an alarm is any `drift_detected`.
driftline's data-drift monitors take each stream in one `update_many` batch (the same changes
as one value at a time); river's detectors are fed one value at a time.
driftline's data-drift monitor is `WindowedDriftMonitor(name, profile, n_features={features})`, its
reference profile `build_profile` on a separate sample of {REFERENCE_SIZE:,} values from the
pre-change distribution, `budget_events` at its default of {BUDGET_EVENTS:,.0f} events between false
alarms per model. It splits that budget over the {features} feature{'s' if features > 1 else ''} and, within a
feature, {CUSUM_SHARE:.0%} to the `MeanShiftCusum` (two-sided CUSUMs on the values' normal scores against the
profile, k = half of each tuned shift of {', '.join(f'{x:g}' for x in SHIFTS)} std), which gets thresholds
computed analytically (Siegmund's run-length approximation, averaged over the reference's sampling
error) for one false alarm per {per_feature / CUSUM_SHARE:,.0f} events, and the rest to the windowed
tests (KS, PSI, Wasserstein; chi-square and PSI for categories), whose thresholds are simulated. Each also
needs a material effect (CUSUM: a sum grows only while the mean sits k away from the reference;
windowed tests: PSI >= 0.1, KS >= 0.1 or Wasserstein >= 0.1 std). The deployed monitor's `active`
holds while either holds its condition; the CUSUM column is its `cusum.active`, the windowed-tests
column a second monitor with `sequential=False` and the same share of the budget. river's ADWIN runs twice: at its
default delta of 0.002, and at delta = {SMALL_DELTA_LABEL}, to show its delay at a false-alarm rate
nearer the budget. Mean shifts and the doubled
variance are on N(0, 1) (PageHinkley's default threshold of 50 and delta of 0.005 are in the
data's units, so its results depend on the scale). Concept drift: river's
`ConceptDriftStream(stream, drift_stream, position, width=1)` (river 0.26.1 overflows in
`math.exp` for positions above ~178 at width 1; the script subclasses it to clamp that exponent,
same draws and samples) with a model trained on its first {TRAIN_SIZE:,} samples, then frozen
and predicting; its 0/1 errors (labels join at once) feed ConceptDriftMonitor and river's binary
detectors. False alarms: fresh detectors on stationary streams of {stat_len:,} events
({stat_streams} per distribution, new seeds, a separate reference sample for driftline's
monitor); binary streams {bin_streams} x {bin_len:,} events each (MissingRateMonitor's first 500
events of each are its baseline, included in the event counts). False-alarm rates are
not uniform in time: river's DDM and EDDM raise most of theirs in their first few thousand
events, so the pre-change table (first ~5,000 events of each stream)
shows that phase and the stationary table the long-run rate. KSWIN costs ~250 us per
update, so it saw only the first {kswin_fa:,} events of one stream per distribution (false
alarms) and {kswin_seeds} seeds per drift row (delays). Wall time {wall:,.0f} s ({sum(cpu.values()):,.0f} s CPU
in {args.workers} worker process{'es' if args.workers > 1 else ''}: data drift delays {cpu.get('delay', 0):,.0f} s, concept
drift {cpu.get('concept', 0):,.0f} s, stationary streams {cpu.get('stationary', 0):,.0f} s)."""
    )


if __name__ == "__main__":
    main()
