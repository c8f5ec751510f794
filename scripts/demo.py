"""driftline's main job on the embedded default: broker, Redis, worker, traffic, alerts.

    python scripts/demo.py --duration 90 --models 3 --rate 400
    driftline demo --duration 90            # the same, through the CLI

It starts a Tansu Kafka broker and a redis-server on free loopback ports, one
``driftline worker``, and simulated traffic for ``--models`` models at
``--rate`` predictions per second each, in real time. ``credit-risk`` gets data
drift (its applicants' salaries rise by one standard deviation) and ``churn``
gets concept drift (the rule behind its labels changes) at 40 % of the run;
other models stay steady. Outcomes arrive a few seconds after their
predictions, and some models send their events in batches.

Alerts are printed as they arrive on the alerts topic, and the status table
from Redis every 10 seconds. After ``--duration`` seconds of traffic it waits
for the worker to catch up, prints the final table and a summary, stops
everything and exits 0. Ctrl-C stops everything too, with exit code 130.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_SIGINT_IGNORED = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # e.g. under nohup: keep it so
if __name__ == "__main__" and not _SIGINT_IGNORED:  # a Ctrl-C while the imports below load exits quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):  # scripts/ for produce and scenarios; the repo for streams
    if _path not in sys.path:
        sys.path.insert(0, _path)

import orjson  # noqa: E402
import redis  # noqa: E402

import produce  # noqa: E402
import scenarios  # noqa: E402
from streams.embedded import EmbeddedBroker, EmbeddedRedis, EmbeddedServerError, EmbeddedStack  # noqa: E402
from streams.launch import WorkerProcess  # noqa: E402
from streams.keys import RedisKeys  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.status import render_status  # noqa: E402

STATUS_EVERY_S = 10.0
DRIFT_AT = 0.4  # share of the run after which the drifting models drift
CATCH_UP_S = 30.0  # how long to wait, after the traffic, for the worker to process everything

WORKER_ENV = {  # short group timeouts: the embedded broker is on loopback and restarts are quick
    "DRIFTLINE_SESSION_TIMEOUT_S": "6",
    "DRIFTLINE_HEARTBEAT_INTERVAL_S": "1",
    "DRIFTLINE_REBALANCE_TIMEOUT_S": "3",
    "DRIFTLINE_LOG_LEVEL": "warning",
}


@dataclass(frozen=True)
class SimulatedModel:
    model_id: str
    scenario: str
    batch_size: int  # events per message
    outcome_lag_s: float  # how long after its prediction an outcome is sent
    seed: int

    def describe(self, rate: float, drift_at_s: float) -> str:
        what = {
            "steady": "steady",
            "data_drift": f"data drift at +{drift_at_s:.0f}s (salary up by 1 std)",
            "concept_drift": f"concept drift at +{drift_at_s:.0f}s (labels follow a new rule)",
        }[self.scenario]
        batching = "one event per message" if self.batch_size == 1 else f"batches of {self.batch_size}"
        return (f"{self.model_id:<12} {what}; {rate:g} predictions/s, {batching}, "
                f"outcomes {self.outcome_lag_s:g}s late")


_CAST = [
    SimulatedModel("credit-risk", "data_drift", 1, 3.0, 1),
    SimulatedModel("churn", "concept_drift", 20, 2.0, 2),
    SimulatedModel("fraud-score", "steady", 50, 1.0, 3),
    SimulatedModel("upsell", "steady", 1, 4.0, 4),
    SimulatedModel("ltv-band", "steady", 10, 2.5, 5),
]


def cast(models: int) -> list[SimulatedModel]:
    """The first ``models`` simulated models; beyond the named ones, steady ``model-N``.

    >>> [m.scenario for m in cast(4)]
    ['data_drift', 'concept_drift', 'steady', 'steady']
    >>> cast(7)[-1].model_id
    'model-7'
    """
    extra = [SimulatedModel(f"model-{i + 1}", "steady", (1, 5, 25)[i % 3], 1.0 + i % 4, i + 1)
             for i in range(len(_CAST), models)]
    return (_CAST + extra)[:models]


class Console:
    """Thread-safe printing, with colours on a terminal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.color = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, flush=True)


class AlertWatcher(threading.Thread):
    """Consumes the alerts topic in a fresh group and prints each alert on one line."""

    def __init__(self, bootstrap: str, topic: str, console: Console, t0: float) -> None:
        super().__init__(name="alerts", daemon=True)
        self.bootstrap, self.topic, self.console, self.t0 = bootstrap, topic, console, t0
        self.stop_event = threading.Event()
        self.seen: list[dict[str, Any]] = []
        self.error: str | None = None

    def run(self) -> None:
        from kafka import KafkaConsumer

        try:
            consumer = KafkaConsumer(
                self.topic, bootstrap_servers=self.bootstrap, group_id=f"driftline-demo-{uuid.uuid4().hex[:8]}",
                client_id="driftline-demo-alerts", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                auto_offset_reset="earliest", enable_auto_commit=False,
            )
        except Exception as exc:  # noqa: BLE001: reported in the summary, the demo goes on
            self.error = f"cannot consume {self.topic}: {exc}"
            self.console.say(f"demo: {self.error}")
            return
        try:
            while not self.stop_event.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        self.show(record.value)
        except Exception as exc:  # noqa: BLE001
            if not self.stop_event.is_set():
                self.error = f"alert consumer failed: {exc}"
                self.console.say(f"demo: {self.error}")
        finally:
            try:
                consumer.close(autocommit=False, timeout_ms=2000)
            except Exception:  # noqa: BLE001: the broker may be gone already
                pass

    def show(self, raw: bytes) -> None:
        try:
            alert = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.console.say(f"demo: unreadable alert: {raw[:200]!r}")
            return
        self.seen.append(alert)
        firing = alert.get("status") == "firing"
        status = self.console.paint(f"{'FIRING' if firing else 'RESOLVED':<8}", "1;31" if firing else "32")
        severity = alert.get("severity", "?")
        if severity == "critical":
            severity = self.console.paint(f"{severity:<8}", "1")
        segment = alert.get("segment") or {}
        where = " ".join(f"{k}={v}" for k, v in sorted(segment.items()))  # a segment's alert, not the model's
        self.console.say(
            f"{_local_time(alert.get('detected_at'))} +{time.monotonic() - self.t0:5.1f}s  {status} "
            f"{severity:<8} {alert.get('model_id', '?'):<12} {alert.get('kind', '?'):<16} "
            f"{alert.get('feature') or '-':<10} {f'[{where}] ' if where else ''}{alert.get('message', '')}"
        )


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08]")  # Faust's terminal codes in worker.log


def _local_time(rfc3339: str | None) -> str:
    if not rfc3339:
        return datetime.now().strftime("%H:%M:%S")
    try:
        return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return rfc3339


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
        self.producer: Any = None
        self.watcher: AlertWatcher | None = None
        self.redis: redis.Redis | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stats: dict[str, produce.PlayStats] = {}
        self.failures: list[str] = []
        self.traffic_s = 0.0

    def run(self) -> int:
        args, say = self.args, self.console.say
        models = cast(args.models)
        say(f"driftline demo: {len(models)} models, {args.rate:g} predictions/s each, {args.duration:g} s of traffic")
        say(f"logs: {self.logs}")
        began = time.monotonic()
        self.stack = EmbeddedStack(EmbeddedBroker(log_path=self.logs / "tansu.log"),
                                   EmbeddedRedis(data_dir=self.logs / "redis", log_path=self.logs / "redis.log"))
        self.stack.start()
        say(f"started Tansu at {self.stack.broker.bootstrap} and Redis at {self.stack.redis.url}")
        self.worker = WorkerProcess({**self.stack.env(), **WORKER_ENV}, log_path=self.logs / "worker.log").start()
        self.worker.ready(timeout_s=90)
        say(f"worker pid {self.worker.pid} is consuming ({time.monotonic() - began:.1f} s after start)")
        self.redis = redis.Redis.from_url(self.stack.redis.url)
        self.producer = produce.make_producer(self.stack.broker.bootstrap, client_id="driftline-demo")

        self.watcher = AlertWatcher(self.stack.broker.bootstrap, self.settings.topic_alerts, self.console,
                                    time.monotonic())
        self.watcher.start()
        n = max(int(args.rate * args.duration), 1)
        drift_at = int(n * DRIFT_AT)
        say("")
        for model in models:
            say("  " + model.describe(args.rate, drift_at / args.rate))
            trained = scenarios.train_model(seed=model.seed)  # before the clock starts: it takes 0.1 s each
            self.threads.append(threading.Thread(target=self._play, args=(model, trained, n, drift_at),
                                                 name=model.model_id, daemon=True))
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
        self.producer.flush(timeout=30)
        self.traffic_s = time.monotonic() - t0
        if self.failures:
            raise RuntimeError("; ".join(self.failures))

        caught_up = self.wait_for_worker(models)
        time.sleep(1.5)  # the last alerts are on the alerts topic: let the watcher print them
        self.print_status(f"final status at +{time.monotonic() - t0:.0f}s")
        say(self.summary(caught_up))
        return 0

    def _play(self, model: SimulatedModel, trained: Any, n: int, drift_at: int) -> None:
        rate = self.args.rate
        try:
            pairs = scenarios.stream(model.model_id, model.scenario, n, drift_at, model.seed, time.time(),
                                     interval_s=1.0 / rate, outcome_lag_s=model.outcome_lag_s, model=trained)
            self.stats[model.model_id] = produce.play(
                self.producer, pairs, predictions_topic=self.settings.topic_predictions,
                outcomes_topic=self.settings.topic_outcomes, rate=rate, batch_size=model.batch_size,
                outcome_delay=max(int(model.outcome_lag_s * rate), 0), stop=self.stop, flush=False,
            )
        except Exception as exc:  # noqa: BLE001: reported by the main thread
            if not self.stop.is_set():
                self.failures.append(f"{model.model_id}: producing failed: {type(exc).__name__}: {exc}")
            self.stop.set()

    def _check_worker(self) -> None:
        if self.worker is not None and not self.worker.alive:
            log = (self.logs / "worker.log").read_text(errors="replace")
            tail = _ANSI.sub("", log).strip()[-2000:] or "(nothing)"
            raise RuntimeError(f"the worker exited with code {self.worker.process.returncode}; "
                               f"worker.log ends with:\n{tail}")

    def wait_for_worker(self, models: list[SimulatedModel]) -> bool:
        """Wait until Redis counts every prediction and outcome that was sent."""
        assert self.redis is not None
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline:
            if all(self._counted(model.model_id) for model in models):
                return True
            self._check_worker()
            time.sleep(0.25)
        self.console.say(f"demo: the worker had not counted every event {CATCH_UP_S:.0f} s after the traffic ended")
        return False

    def _counted(self, model_id: str) -> bool:
        assert self.redis is not None
        sent = self.stats.get(model_id)
        if sent is None:
            return True
        counts = self.redis.hmget(self.keys.model(model_id), "predictions", "outcomes")
        return [int(c or 0) for c in counts] == [sent.predictions, sent.outcomes]

    def print_status(self, title: str) -> None:
        assert self.redis is not None
        try:
            table = render_status(self.redis, self.keys)
        except redis.RedisError as exc:
            table = f"(cannot read Redis: {exc})"
        self.console.say(f"\n── {title} " + "─" * max(60 - len(title), 4) + f"\n{table}\n")

    def summary(self, caught_up: bool) -> str:
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
        line = (f"demo: sent {predictions:,} predictions + {outcomes:,} outcomes in {messages:,} messages over "
                f"{self.traffic_s:.1f} s ({rate:,.0f} events/s); alerts seen: {len(alerts)} "
                f"({firing} firing, {len(alerts) - firing} resolved; firing by kind: {by_kind})")
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
            except Exception as exc:  # noqa: BLE001: keep stopping the rest
                print(f"demo: stopping the {name} failed: {exc}", file=sys.stderr)

    def _close_producer(self, timeout_s: float, quiet: bool) -> None:
        if self.producer is None:
            return
        from kafka.errors import KafkaTimeoutError

        try:
            self.producer.close(timeout=timeout_s)
        except KafkaTimeoutError:
            # kafka-python raises from close() when its flush times out and leaves the producer
            # open, so its __del__ would raise again at exit: drop the undelivered messages.
            self.producer._sender.force_close()
            self.producer._closed = True
            if not quiet:
                raise

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop_event.set()
            self.watcher.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of traffic (default 90)")
    parser.add_argument("--models", type=int, default=3, help="how many models to simulate (default 3)")
    parser.add_argument("--rate", type=float, default=400.0, help="predictions per second per model (default 400)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.models < 1 or args.rate <= 0:
        parser.error("--duration and --rate must be > 0, --models >= 1")
    demo = Demo(args)
    if not _SIGINT_IGNORED:
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
    except Exception as exc:  # noqa: BLE001: one line, not a traceback, then the same clean-up
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


if __name__ == "__main__":
    sys.exit(main())
