"""Detection benchmark: driftline's detectors against river's, on the same seeded streams.

Run from the repository root::

    .venv/bin/python -m scripts.bench_detection [--features F] [--seeds N] [--quick] [--workers W]

Prints markdown tables of

* detection delay: events after a change until the first alarm (median and max over
  seeds) and how many seeds detected within the horizon, for mean shifts of 0.1, 0.25,
  0.5 and 1 sigma, a doubled variance, a category mix change, null injection, a score
  shift, and concept drift on river's Agrawal, SEA and Hyperplane generators;
* alarms raised before the change (false alarms, reported apart from detections);
* false alarms per million events on stationary streams, with the number of events
  each rate rests on.

driftline's detectors run with their defaults, as driftline creates them. Data drift:
``WindowedDriftMonitor`` against a profile built by ``build_profile`` from a separate sample of
10,000 reference values, with ``n_features=F`` (``--features``, default 20: the model size over
which the per-model budget of one false alarm per 1e6 events is split). As deployed it runs two
detectors and holds its condition (``active``) while either does: windowed tests (KS, PSI,
Wasserstein on tumbling windows of 500; chi-square and PSI for categories) and
``MeanShiftCusum`` (a two-sided CUSUM bank on normal scores against the profile, tuned to shifts
of 0.1/0.25/0.5/1 std), the CUSUM with three quarters of the feature's budget and the windowed
tests with a quarter (``CUSUM_SHARE``). The tables show the CUSUM alone
(``monitor.cusum.active`` of the deployed monitor), the windowed tests alone (a separate monitor
with ``sequential=False``) and the deployed monitor. Also ``MissingRateMonitor`` and
``ConceptDriftMonitor`` (DDM on 0/1 errors, gated). river's detectors run at their defaults
(only the random seed of KSWIN is set, so runs repeat), plus ADWIN with ``delta=1e-5``, whose
false-alarm rate is nearer driftline's budget.

Everything is seeded (numpy ``Generator``, ``random.Random``, river generator seeds):
the same arguments print the same tables, whatever the number of worker processes.
The streams are in :mod:`scripts.bench_detection_streams`, the tasks and the plan
in :mod:`scripts.bench_detection_tasks`, the tables in
:mod:`scripts.bench_detection_report`.
"""

from __future__ import annotations

import argparse
import os

from scripts.bench_detection_report import report
from scripts.bench_detection_tasks import Plan, run_all


def arguments(argv: list[str] | None = None) -> Plan:
    """The command line as a plan."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--features",
        type=int,
        default=20,
        help="model size: the per-model false-alarm budget (one per 1e6 events) is split over this many features",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per drift kind (default 50; --quick: 8)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 2), help="worker processes")
    args = parser.parse_args(argv)
    if args.features < 1:
        parser.error("--features must be at least 1")
    return Plan.of(args.features, args.seeds, args.quick, args.workers)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    plan = arguments(argv)
    results, cpu, wall = run_all(plan)
    report(plan, results, cpu, wall)


if __name__ == "__main__":
    main()
