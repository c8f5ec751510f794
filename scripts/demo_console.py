"""The demo's cast of simulated models, and what it prints: a console, and a thread that shows alerts as they fire."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from scripts.harness import GROUP_TIMING


@dataclass(frozen=True)
class SimulatedModel:
    """One model of the demo: its scenario, how it batches its events, and how late its labels come."""

    model_id: str
    scenario: str
    batch_size: int  # events per message
    outcome_lag_s: float  # how long after its prediction an outcome is sent
    seed: int

    def describe(self, rate: float, drift_at_s: float) -> str:
        """One line: what happens to it, its rate, its batching and its labels' lag."""
        what = {
            "steady": "steady",
            "data_drift": f"data drift at +{drift_at_s:.0f}s (salary up by 1 std)",
            "concept_drift": f"concept drift at +{drift_at_s:.0f}s (labels follow a new rule)",
        }[self.scenario]
        batching = "one event per message" if self.batch_size == 1 else f"batches of {self.batch_size}"
        return f"{self.model_id:<12} {what}; {rate:g} predictions/s, {batching}, outcomes {self.outcome_lag_s:g}s late"


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
    extra = [
        SimulatedModel(f"model-{i + 1}", "steady", (1, 5, 25)[i % 3], 1.0 + i % 4, i + 1)
        for i in range(len(_CAST), models)
    ]
    return (_CAST + extra)[:models]


class Console:
    """Thread-safe printing, with colours on a terminal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.color = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def paint(self, text: str, code: str) -> str:
        """``text`` in the ANSI colour ``code``, on a terminal."""
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def say(self, text: str = "") -> None:
        """Print one line, whole, whatever the thread."""
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
        """Consume and show alerts until ``stop_event`` is set."""
        from kafka import KafkaConsumer

        session_ms = int(float(GROUP_TIMING["DRIFTLINE_SESSION_TIMEOUT_S"]) * 1000)
        heartbeat_ms = int(float(GROUP_TIMING["DRIFTLINE_HEARTBEAT_INTERVAL_S"]) * 1000)
        try:
            consumer = KafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=f"driftline-demo-{uuid.uuid4().hex[:8]}",
                client_id="driftline-demo-alerts",
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=heartbeat_ms,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the demo goes on
            self.error = f"cannot consume {self.topic}: {exc}"
            self.console.say(f"demo: {self.error}")
            return
        try:
            while not self.stop_event.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        self.show(record.value)
        except Exception as exc:  # noqa: BLE001 - reported, the demo goes on
            if not self.stop_event.is_set():
                self.error = f"alert consumer failed: {exc}"
                self.console.say(f"demo: {self.error}")
        finally:
            try:
                consumer.close(autocommit=False, timeout_ms=2000)
            except Exception:  # noqa: BLE001 - the broker may be gone already
                pass

    def show(self, raw: bytes) -> None:
        """Print one alert on one line."""
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
            f"{local_time(alert.get('detected_at'))} +{time.monotonic() - self.t0:5.1f}s  {status} "
            f"{severity:<8} {alert.get('model_id', '?'):<12} {alert.get('kind', '?'):<16} "
            f"{alert.get('feature') or '-':<10} {f'[{where}] ' if where else ''}{alert.get('message', '')}"
        )


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08]")  # Faust's terminal codes in worker.log


def local_time(rfc3339: str | None) -> str:
    """An RFC 3339 time as local HH:MM:SS (now when absent)."""
    if not rfc3339:
        return datetime.now().strftime("%H:%M:%S")
    try:
        return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return rfc3339
