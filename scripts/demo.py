"""driftline's main job on the embedded default: broker, Redis, worker, traffic, alerts.

    python -m scripts.demo --duration 90 --models 3 --rate 400
    scripts/dev.sh demo --duration 90       # the same, installing .venv first
    driftline demo --duration 90            # the same, through the CLI

It starts a Tansu Kafka broker and a redis-server on free loopback ports, one
``driftline worker``, and simulated traffic for ``--models`` models at
``--rate`` predictions per second each, in real time. ``credit-risk`` gets data
drift (its applicants' salaries rise by one standard deviation) and ``churn``
gets concept drift (the rule behind its labels changes) at 40 % of the run;
other models stay steady. Outcomes arrive a few seconds after their
predictions, and some models send their events in batches.

It prints the dashboard's address (the worker's web port) as soon as the
worker runs. Alerts are printed as they arrive on the alerts topic, and the
status table from Redis every 10 seconds. After ``--duration`` seconds of
traffic it waits for the worker to catch up, prints the final table and a
summary, writes the drifting models' reports (``driftline report``) next to
its logs, stops everything and exits 0; with ``--stay`` it keeps the dashboard
up until Ctrl-C. Ctrl-C stops everything too, with exit code 130.

This module only reads the command line: the run is :mod:`scripts.demo_run`,
the cast and what is printed :mod:`scripts.demo_console`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

SIGINT_IGNORED = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # e.g. under nohup: keep it so


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of traffic (default 90)")
    parser.add_argument("--models", type=int, default=3, help="how many models to simulate (default 3)")
    parser.add_argument("--rate", type=float, default=400.0, help="predictions per second per model (default 400)")
    parser.add_argument("--stay", action="store_true", help="keep the stack and the dashboard up after the traffic")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.models < 1 or args.rate <= 0:
        parser.error("--duration and --rate must be > 0, --models >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when it ran to its end, 130 when interrupted, 1 when it failed."""
    args = arguments(argv)
    if not SIGINT_IGNORED:
        signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # a Ctrl-C while the demo loads exits quietly
    from scripts.demo_run import run  # numpy, river and the Kafka clients load after that handler

    return run(args, SIGINT_IGNORED)


def run_as_module() -> None:
    """Run as a file (``driftline demo`` does, through runpy): exec ``python -m scripts.demo`` from the repository."""
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execv(sys.executable, [sys.executable, "-m", "scripts.demo", *sys.argv[1:]])


if __name__ == "__main__":
    if not __package__:
        run_as_module()
    sys.exit(main())
