"""The detection benchmark's report: markdown tables of delays, alarms before the change and false-alarm rates.

:func:`report` prints it all from the tasks' results, in the order the
benchmark always printed it.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
import river

from detectors.cusum import SHIFTS, MeanShiftCusum
from detectors.cusum_calibration import thresholds
from detectors.windowed_tests import CUSUM_SHARE
from scripts.bench_detection_streams import (
    BINARY_COLUMNS,
    BINARY_HEADERS,
    BUDGET_EVENTS,
    CONCEPT_COLUMNS,
    CONCEPT_HEADERS,
    CONCEPT_KINDS,
    DATA_COLUMNS,
    DATA_HEADERS,
    DATA_KINDS,
    HORIZON,
    KSWIN_LEAD,
    PHASE,
    REFERENCE_SIZE,
    SMALL_DELTA_LABEL,
    STATIONARY_BINARY,
    STATIONARY_NUMERIC,
    TRAIN_SIZE,
)
from scripts.bench_detection_tasks import Plan

Results = list[tuple[str, Any]]
Onsets = dict[tuple[str, str], list[tuple[int, Any]]]


def first_after(onsets: list[int], change: int) -> int | None:
    """Delay (post-change events seen when the alarm fired: 1 = on the first changed event)."""
    for i in onsets:
        if i >= change:
            delay = i - change + 1
            return delay if delay <= HORIZON else None
    return None


def delay_cell(delays: list[int | None]) -> str:
    """Median / max delay over seeds, and how many seeds detected."""
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
    """Alarms before the change: total, (seeds with any / seeds), in how many events."""
    if not counts:
        return "not run"
    return f"{sum(counts)} ({sum(1 for c in counts if c)}/{len(counts)}) in {events:,}"


def rate_cell(alarms: int, events: int) -> str:
    """False alarms per million events, with the 95% upper bound when there is none."""
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
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def by_seed(pairs: list[tuple[int, Any]]) -> list[Any]:
    """The values of (seed, value) pairs, in seed order."""
    return [v for _, v in sorted(pairs)]


def data_drift(results: Results) -> tuple[Onsets, Onsets, dict[tuple[str, str], int]]:
    """Per (drift kind, detector): (seed, delay) pairs, (seed, alarms before the change) pairs, events fed before it."""
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

    return delays, pre, pre_events


def concept_drift(results: Results) -> tuple[Onsets, Onsets, dict[str, int], dict[str, list[tuple[float, float]]]]:
    """Per (stream, detector): delays and alarms before the change; per stream: events before it, error rates."""
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
    return cdelays, cpre, cpre_events, crates


def false_alarms(results: Results) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (stationary stream, detector): (alarms, events), summed over its streams."""
    fa: dict[tuple[str, str], list[int]] = {}
    for what, res in results:
        if what != "stationary":
            continue
        dist, out = res
        for det, (alarms, events) in out.items():
            acc = fa.setdefault((dist, det), [0, 0])
            acc[0] += alarms
            acc[1] += events
    return {key: (alarms, events) for key, (alarms, events) in fa.items()}


def print_header(plan: Plan) -> None:
    """The title and how the per-model false-alarm budget is split."""
    features = plan.features
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


def print_delays(plan: Plan, delays: Onsets) -> None:
    """Detection delays on data drift."""
    kswin_seeds = plan.kswin_seeds
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


def print_concept(cdelays: Onsets, crates: dict[str, list[tuple[float, float]]]) -> None:
    """Detection delays on concept drift, with the error rates before and after."""
    print("## Concept drift (0/1 errors of a model trained on 3,000 samples, then frozen)\n")
    rows = []
    for kind, label in CONCEPT_KINDS.items():
        r = crates[kind]
        before, after = statistics.mean(a for a, _ in r), statistics.mean(b for _, b in r)
        row = [label, f"{before:.1%} -> {after:.1%}"]
        row += [delay_cell(by_seed(cdelays[(kind, det)])) for det in CONCEPT_COLUMNS]
        rows.append(row)
    print(table(["stream", "error rate before -> after"] + [CONCEPT_HEADERS[c] for c in CONCEPT_COLUMNS], rows))


def print_pre_change(
    pre: Onsets, pre_events: dict[tuple[str, str], int], cpre: Onsets, cpre_events: dict[str, int]
) -> None:
    """Alarms before the change, data drift then concept drift."""
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


def print_false_alarms(plan: Plan, fa: dict[tuple[str, str], tuple[int, int]]) -> None:
    """False-alarm rates on stationary streams, numeric and categorical then binary."""
    features = plan.features
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


def print_method(plan: Plan, cpu: dict[str, float], wall: float) -> None:
    """How it was measured, with the run's wall and CPU time."""
    features, seeds, kswin_seeds, kswin_fa = plan.features, plan.seeds, plan.kswin_seeds, plan.kswin_fa
    stat_streams, stat_len, bin_streams, bin_len = plan.stat_streams, plan.stat_len, plan.bin_streams, plan.bin_len
    per_feature, workers = BUDGET_EVENTS * features, plan.workers
    print(
        f"""
## Method

Each drift row is {seeds} seeded streams (numpy `Generator`s keyed by drift kind and seed): the
change happens at event 5,000 + u, with u uniform in 0..{PHASE - 1} per seed, so that it falls at
any phase of the windowed tests' 500-event tumbling windows, of the CUSUM's {MeanShiftCusum.chunk}-value scoring
chunks and of MissingRateMonitor's 16-event checks; before it every monitor has seen at least
5,000 events (MissingRateMonitor's baseline is the first 500, the others' is a reference sample). A
detection is the first alarm at or after the change; the delay is the number of post-change
events seen when it fires (1 = on the first changed event) and counts only within {HORIZON:,}
events. Median over all seeds (a miss counts as beyond the horizon, hence ">{HORIZON:,}" when half
or more miss), max over the seeds that detected. An alarm before the change is a false alarm,
counted in the second table and never as a detection. For driftline's monitors an alarm is
`active` turning on (an episode); an episode already open at the change does not count as a
detection, a new onset is needed. For river's detectors an alarm is any `drift_detected`.
driftline's data-drift monitor is `WindowedDriftMonitor(name, profile, n_features={features})`, its
reference profile `build_profile` on a separate sample of {REFERENCE_SIZE:,} values from the
pre-change distribution, `budget_events` at its default of {BUDGET_EVENTS:,.0f} events between false
alarms per model. It splits that budget over the {features} feature{"s" if features > 1 else ""} and, within a
feature, {CUSUM_SHARE:.0%} to the `MeanShiftCusum` (two-sided CUSUMs on the values' normal scores against the
profile, k = half of each tuned shift of {", ".join(f"{x:g}" for x in SHIFTS)} std), which gets thresholds
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
in {workers} worker process{"es" if workers > 1 else ""}: data drift delays {cpu.get("delay", 0):,.0f} s, concept
drift {cpu.get("concept", 0):,.0f} s, stationary streams {cpu.get("stationary", 0):,.0f} s)."""
    )


def report(plan: Plan, results: Results, cpu: dict[str, float], wall: float) -> None:
    """Print every table of the benchmark."""
    delays, pre, pre_events = data_drift(results)
    cdelays, cpre, cpre_events, crates = concept_drift(results)
    print_header(plan)
    print_delays(plan, delays)
    print_concept(cdelays, crates)
    print_pre_change(pre, pre_events, cpre, cpre_events)
    print_false_alarms(plan, false_alarms(results))
    print_method(plan, cpu, wall)
