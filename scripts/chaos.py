"""Chaos run: crash workers and Redis under load, then check that every count in Redis is exact.

Run from the repository root::

    .venv/bin/python -m scripts.chaos [--models 6] [--events-per-model N] [--rate EVENTS_PER_S]
                                      [--kills 4] [--seed S]

It starts an embedded Tansu broker, an append-only ``redis-server`` and two
``driftline worker`` processes (logs go to a temporary folder printed first).
A producer thread streams contract-v1 traffic for ``--models`` models at
``--rate`` events per second in all: predictions (single events, JSON-array
batches of one model or of several, unkeyed and wrongly keyed messages), their
outcomes a few hundred events later (a few twice, a few before their
prediction, some never) and a few malformed messages. It keeps a ledger of
exactly what a correct worker must count.

Meanwhile the driver, on a schedule drawn from ``--seed``, SIGKILLs a worker
``--kills`` times (alternating between the two, and restarting it at once),
restarts Redis once (stop, start on the same port and append-only data folder)
and makes Redis unreachable once for ``--outage`` seconds. Both workers must
survive the Redis events. When the producer is done it waits (at most
``--converge-timeout`` seconds) until the counts in Redis settle, and compares
``predictions`` and ``joined`` of every model with the ledger.

It prints three markdown tables (per model, the timeline of chaos events, what
the logs say) and a summary line, and exits 0 on PASS and 1 on FAIL (130 when
interrupted). Every broker, Redis and worker process it started is stopped at
the end, also on Ctrl-C or SIGTERM, and it checks that none is left.

The traffic and its ledger are in :mod:`scripts.chaos_traffic`, the driver in
:mod:`scripts.chaos_driver`, the final checks in :mod:`scripts.chaos_checks`
and the report in :mod:`scripts.chaos_report`.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.chaos_checks import converge, leftovers
from scripts.chaos_driver import Chaos
from scripts.chaos_report import report


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked; a random seed (printed) when none is given."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--models", type=int, default=6, help="models to simulate")
    parser.add_argument("--events-per-model", type=int, default=36_000, help="prediction events per model")
    parser.add_argument("--rate", type=float, default=2_500.0, help="events per second in all (with outcomes)")
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs (alternating workers)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of traffic and schedule (None: a random one, printed)"
    )
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis stays unreachable")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of driftline's topics")
    parser.add_argument("--checkpoint-interval", type=float, default=1.0, help="DRIFTLINE_CHECKPOINT_INTERVAL_S")
    parser.add_argument("--converge-timeout", type=float, default=180.0, help="seconds to wait for exact counts")
    parser.add_argument(
        "--settle", type=float, default=45.0, help="stop waiting when wrong counts have not changed for this long"
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 100_000)
    if args.models < 1 or args.events_per_model < 1 or args.rate <= 0 or args.kills < 0:
        parser.error("--models, --events-per-model and --rate must be positive, --kills not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run it: set up, produce and break, converge, clean up, report. 0 on PASS, 1 on FAIL, 130 interrupted."""
    args = arguments(argv)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (nohup, &)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="driftline-chaos-"))
    print(f"driftline chaos: seed {args.seed}, logs in {workdir}", flush=True)
    run = Chaos(args, workdir)
    interrupted = False
    try:
        run.start()
        run.produce_and_break()
        converge(run)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping everything", flush=True)
    except Exception as exc:  # noqa: BLE001 - reported as a failure, after clean-up
        run.problem(f"driver failed: {exc!r}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        try:
            run.shutdown()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    time.sleep(0.2)
    ports = [server.port for server in (run.broker, run.redis) if server is not None]
    left = leftovers(ports, run.env.get("DRIFTLINE_APP_ID"))
    passed = report(run, time.monotonic() - started, interrupted, left)
    if interrupted:
        return 130
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
