"""The demo's run: an embedded stack, one worker, simulated traffic, alerts as they fire and status tables.

:func:`run` is what ``python -m scripts.demo`` runs (see :mod:`scripts.demo`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from scripts.demo_console import ANSI, AlertWatcher, Console, SimulatedModel, cast
from scripts.harness import GROUP_TIMING, Producer, WorkerProcess, kafka_producer, model_counts, wait_for
from scripts.produce import PlayStats, play
from scripts.scenarios import stream, train_model
from streams.embedded import EmbeddedBroker, EmbeddedRedis, EmbeddedServerError, EmbeddedStack, free_port
from streams.history import HistoryPolicy
from streams.keys import RedisKeys
from streams.report import render_html, report_document
from streams.settings import Settings
from streams.status import render_status
from streams.web_dashboard import DASHBOARD_PATH

STATUS_EVERY_S = 10.0
DRIFT_AT = 0.4  # share of the run after which the drifting models drift
CATCH_UP_S = 30.0  # how long to wait, after the traffic, for the worker to process everything
WORKER_ENV = GROUP_TIMING | {
    "DRIFTLINE_LOG_LEVEL": "warning",  # the broker is on loopback: restarts are quick
    "DRIFTLINE_HISTORY_INTERVAL_S": "5",  # a point every 5 s of event time: a 90 s run draws a trend
}
REPORTED = ("credit-risk", "churn")  # the models whose report the demo writes at its end


class Demo:
    """Everything the demo starts, so one ``close()`` stops all of it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.console = Console()
        self.settings = Settings()  # topic names; connections come from the stack
        self.keys = RedisKeys()
        self.logs = Path(tempfile.mkdtemp(prefix="driftline-demo-"))
        self.stack: EmbeddedStack | None = None
        self.worker: WorkerProcess | None = None
        self.producer: Producer | None = None
        self.watcher: AlertWatcher | None = None
        self.redis: redis.Redis | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stats: dict[str, PlayStats] = {}
        self.failures: list[str] = []
        self.traffic_s = 0.0
        self.web_port = 0

    def run(self) -> int:
        """Start the stack, the worker and the traffic; print alerts and status; return 0 at the end."""
        args, say = self.args, self.console.say
        models = cast(args.models)
        say(f"driftline demo: {len(models)} models, {args.rate:g} predictions/s each, {args.duration:g} s of traffic")
        say(f"logs: {self.logs}")
        began = time.monotonic()
        self.stack = EmbeddedStack(
            EmbeddedBroker(log_path=self.logs / "tansu.log"),
            EmbeddedRedis(data_dir=self.logs / "redis", log_path=self.logs / "redis.log"),
        )
        self.stack.start()
        say(f"started Tansu at {self.stack.broker.bootstrap} and Redis at {self.stack.redis.url}")
        self.web_port = free_port()
        env = {**self.stack.env(), **WORKER_ENV, "DRIFTLINE_WEB_PORT": str(self.web_port)}
        self.worker = WorkerProcess(env, log_path=self.logs / "worker.log").start()
        self.worker.ready(timeout_s=90)
        say(f"worker pid {self.worker.pid} is consuming ({time.monotonic() - began:.1f} s after start)")
        say(self.console.paint(f"dashboard: {self.dashboard}  (open it now: it follows the run live)", "1"))
        self.redis = redis.Redis.from_url(self.stack.redis.url)
        self.producer = kafka_producer(self.stack.broker.bootstrap, client_id="driftline-demo")

        self.watcher = AlertWatcher(
            self.stack.broker.bootstrap, self.settings.topic_alerts, self.console, time.monotonic()
        )
        self.watcher.start()
        n = max(int(args.rate * args.duration), 1)
        drift_at = int(n * DRIFT_AT)
        say("")
        for model in models:
            say("  " + model.describe(args.rate, drift_at / args.rate))
            trained = train_model(seed=model.seed)  # before the clock starts: it takes 0.1 s each
            self.threads.append(
                threading.Thread(
                    target=self._play, args=(model, trained, n, drift_at), name=model.model_id, daemon=True
                )
            )
        say("")
        t0 = self.watcher.t0 = time.monotonic()  # the clock of "+Ns" in the output: traffic starts now
        for thread in self.threads:
            thread.start()

        deadline = t0 + args.duration + 1.0  # a producer still behind after its share of the run stops here
        next_status = t0 + STATUS_EVERY_S
        while any(t.is_alive() for t in self.threads):
            now = time.monotonic()
            if now >= deadline:
                self.stop.set()  # owed outcomes are still sent
            if now >= next_status:
                self.print_status(f"status at +{now - t0:.0f}s")
                next_status += STATUS_EVERY_S
            self._check_worker()
            time.sleep(min(0.2, max(next_status - time.monotonic(), 0.01)))
        self.producer.flush(30)
        self.traffic_s = time.monotonic() - t0
        if self.failures:
            raise RuntimeError("; ".join(self.failures))

        caught_up = self.wait_for_worker()
        time.sleep(1.5)  # the last alerts are on the alerts topic: let the watcher print them
        self.print_status(f"final status at +{time.monotonic() - t0:.0f}s")
        say(self.summary(caught_up))
        self.write_reports()
        if args.stay:
            return self.stay()
        say(f"dashboard was at {self.dashboard} (python -m scripts.demo --stay keeps it up after the traffic)")
        return 0

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.web_port}{DASHBOARD_PATH}"

    def write_reports(self) -> None:
        """The drifting models' reports (``driftline report``), to look at after the demo."""
        assert self.redis is not None
        for model_id in REPORTED[: self.args.models]:
            document = report_document(self.redis, self.keys, model_id, HistoryPolicy(5.0, 7 * 86400.0, 10))
            if document is not None:
                path = self.logs / f"report-{model_id}.html"
                path.write_text(render_html(document), encoding="utf-8")
                self.console.say(f"report of {model_id}: {path}")

    def stay(self) -> int:
        """Keep the stack and the dashboard up until Ctrl-C."""
        self.console.say(f"the dashboard stays up at {self.dashboard}; Ctrl-C stops everything")
        try:
            while True:
                self._check_worker()
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.console.say("\ndemo: stopping")
            return 0

    def _play(self, model: SimulatedModel, trained: Any, n: int, drift_at: int) -> None:
        rate = self.args.rate
        assert self.producer is not None
        try:
            pairs = stream(
                model.model_id,
                model.scenario,
                n,
                drift_at,
                model.seed,
                time.time(),
                interval_s=1.0 / rate,
                outcome_lag_s=model.outcome_lag_s,
                model=trained,
            )
            self.stats[model.model_id] = play(
                self.producer,
                pairs,
                predictions_topic=self.settings.topic_predictions,
                outcomes_topic=self.settings.topic_outcomes,
                rate=rate,
                batch_size=model.batch_size,
                outcome_delay=max(int(model.outcome_lag_s * rate), 0),
                stop=self.stop,
                flush=False,
            )
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            if not self.stop.is_set():
                self.failures.append(f"{model.model_id}: producing failed: {type(exc).__name__}: {exc}")
            self.stop.set()

    def _check_worker(self) -> None:
        if self.worker is not None and not self.worker.alive:
            log = (self.logs / "worker.log").read_text(errors="replace")
            tail = ANSI.sub("", log).strip()[-2000:] or "(nothing)"
            raise RuntimeError(f"the worker exited with code {self.worker.returncode}; worker.log ends with:\n{tail}")

    def wait_for_worker(self) -> bool:
        """Wait until Redis counts every prediction and outcome that was sent."""
        assert self.redis is not None
        sent = {model_id: (s.predictions, s.outcomes) for model_id, s in self.stats.items()}

        def counted() -> bool | None:
            self._check_worker()
            assert self.redis is not None
            return True if model_counts(self.redis, self.keys, sent, ("predictions", "outcomes")) == sent else None

        try:
            return wait_for(counted, CATCH_UP_S, "the worker counting", every_s=0.25)
        except TimeoutError:
            self.console.say(f"demo: the worker had not counted every event {CATCH_UP_S:.0f} s after the traffic ended")
            return False

    def print_status(self, title: str) -> None:
        """The status table from Redis, under ``title``."""
        assert self.redis is not None
        try:
            table = render_status(self.redis, self.keys)
        except redis.RedisError as exc:
            table = f"(cannot read Redis: {exc})"
        self.console.say(f"\n── {title} " + "─" * max(60 - len(title), 4) + f"\n{table}\n")

    def summary(self, caught_up: bool) -> str:
        """One line: what was sent, how fast, and the alerts seen."""
        predictions = sum(s.predictions for s in self.stats.values())
        outcomes = sum(s.outcomes for s in self.stats.values())
        messages = sum(s.messages for s in self.stats.values())
        failed = sum(s.failed for s in self.stats.values())
        alerts = self.watcher.seen if self.watcher else []
        firing = sum(a.get("status") == "firing" for a in alerts)
        kinds: dict[str, int] = {}
        for alert in alerts:
            if alert.get("status") == "firing":
                kinds[alert.get("kind", "?")] = kinds.get(alert.get("kind", "?"), 0) + 1
        by_kind = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
        rate = (predictions + outcomes) / self.traffic_s if self.traffic_s else 0.0
        line = (
            f"demo: sent {predictions:,} predictions + {outcomes:,} outcomes in {messages:,} messages over "
            f"{self.traffic_s:.1f} s ({rate:,.0f} events/s); alerts seen: {len(alerts)} "
            f"({firing} firing, {len(alerts) - firing} resolved; firing by kind: {by_kind})"
        )
        if failed:
            line += f"; {failed} messages FAILED to send"
        if not caught_up:
            line += "; the worker had NOT counted every event"
        return line

    def close(self, interrupted: bool = False) -> None:
        """Stop traffic, the alert consumer, the worker and the stack; never raises."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        broker_up = self.stack is not None and self.stack.broker.alive
        # A worker whose broker is gone (a terminal's Ctrl-C reaches the broker too) cannot
        # shut down cleanly: Faust keeps retrying the broker, so do not wait long for it.
        worker_wait = 20.0 if broker_up else 3.0
        steps = [
            ("producer", lambda: self._close_producer(2.0 if interrupted or not broker_up else 10.0, interrupted)),
            ("alert consumer", self._stop_watcher),
            ("worker", lambda: self.worker is not None and self.worker.stop(timeout_s=worker_wait)),
            ("redis client", lambda: self.redis is not None and self.redis.close()),
            ("broker and redis", lambda: self.stack is not None and self.stack.stop()),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"demo: stopping the {name} failed: {exc}", file=sys.stderr)

    def _close_producer(self, timeout_s: float, quiet: bool) -> None:
        if self.producer is None:
            return
        self.producer.close(timeout_s)  # what is not delivered by then is dropped
        if self.producer.pending and not quiet:
            raise RuntimeError(f"{self.producer.pending} messages were not delivered in {timeout_s:g} s")

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop_event.set()
            self.watcher.join(timeout=5)


def run(args: argparse.Namespace, sigint_ignored: bool) -> int:
    """Run the demo to its end and stop everything it started, also on Ctrl-C; return the exit code."""
    demo = Demo(args)
    if not sigint_ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, Ctrl-C is a KeyboardInterrupt
    code = 1
    try:
        code = demo.run()
    except KeyboardInterrupt:
        code = 130
        demo.console.say("\ndemo: interrupted, stopping the worker, broker and Redis")
    except (EmbeddedServerError, RuntimeError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        print(f"demo: logs are in {demo.logs}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, then the same clean-up
        print(f"demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"demo: logs are in {demo.logs}", file=sys.stderr)
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        try:
            demo.close(interrupted=code == 130)
        finally:
            signal.signal(signal.SIGINT, previous)
    if code == 130:
        demo.console.say("demo: stopped")
    return code
