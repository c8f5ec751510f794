"""Monitoring per segment: a model's largest slices each get their own detectors.

Prediction events may carry ``segment``, labels such as ``{"region": "eu"}``.
A segment is its full label set, named by :func:`~detectors.alerts.segment_key`
(canonical JSON: ``{"channel": "web", "region": "eu"}`` and
``{"region": "eu"}`` are two segments).

Selection. The model's first ``selection_events`` events that carry a segment
are counted with the Misra-Gries summary (a table of at most ``table_size``
segments, so memory stays bounded whatever the cardinality; its counts never
exceed the true ones and fall short by at most ``selection_events /
(table_size + 1)``). Then, once, the segments counted at least ``min_events``
times (the minimum sample size: a segment must be large enough to fill its
baselines and windows in reasonable time) are ranked by count, ties by key, and
the first ``max_segments`` get a monitor of their own. The choice is fixed, so
it is the same after a replay and never churns. Every other segment, including
those first seen later, feeds one pooled monitor whose segment is
:data:`POOLED`. Monitoring starts with the event after the selection. Events
without a segment only feed the model's own monitor, not these.

False alarms. Each segment monitor is a :class:`~detectors.model_monitor.ModelMonitor`
with the model's configuration but ``budget_events`` multiplied by the number of
segment monitors plus one (chosen, pooled and the model's own): a Bonferroni
split, so segments do not multiply a model's false alarms. A segment's windowed
tests use that segment's own first values as their reference: an uploaded
training sample describes the whole population, which a segment may
legitimately differ from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from detectors.alerts import STATUS_RANK, Alert, AlertKey, key_from_text, key_text, segment_key
from detectors.columns import FeatureValue, PairColumns, PredictionColumns
from detectors.model_monitor import ModelMonitor
from detectors.monitor_config import FeatureBudget, MonitorConfig

POOLED: dict[str, str] = {"_pooled": "other"}  # the segment of the pooled monitor (in alerts and Redis)
POOLED_KEY = cast(str, segment_key(POOLED))  # POOLED has labels: a key, never None


def _key(segment: str | Mapping[str, str] | None) -> str | None:
    return segment if segment is None or isinstance(segment, str) else segment_key(dict(segment))


@dataclass
class SegmentMonitors:
    """One :class:`ModelMonitor` per top segment of a model, plus one for all the others.

    Parameters
    ----------
    model_id : str
        The model.
    config : MonitorConfig
        The model's configuration; segment monitors get it with a split budget.
    max_segments : int
        The most segments monitored on their own; 0 turns segment monitoring off.
    selection_events : int
        Segment-carrying events counted before the choice is made.
    min_events : int
        The least of those events a segment needs to be monitored on its own.
    table_size : int
        Segments the Misra-Gries summary tracks while counting.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(5)
    >>> segments = SegmentMonitors("shop", MonitorConfig(), max_segments=2,
    ...                            selection_events=400, min_events=40)
    >>> fired = []
    >>> for i in range(8000):
    ...     region = rng.choices(["eu", "us", "ap", "sa"], [40, 40, 15, 5])[0]
    ...     x = rng.gauss(1.0 if region == "us" and i >= 5000 else 0.0, 1.0)  # "us" alone drifts
    ...     segments.observe_prediction({"region": region}, {"x": x}, None, float(i), "v1")
    ...     fired += [(a.evidence.kind, a.evidence.feature, a.segment) for a in segments.alerts(now=float(i))]
    >>> segments.chosen
    ['{"region":"eu"}', '{"region":"us"}']
    >>> fired
    [('data_drift', 'x', {'region': 'us'})]
    >>> [(s["segment"], s["pooled"], s["open_alerts"]) for s in segments.summary().values()]
    [({'region': 'eu'}, False, 0), ({'region': 'us'}, False, 1), ({'_pooled': 'other'}, True, 0)]
    """

    model_id: str
    config: MonitorConfig = field(default_factory=MonitorConfig)
    max_segments: int = 5
    selection_events: int = 10_000
    min_events: int = 500
    table_size: int = 256
    counts: dict[str, int] = field(default_factory=dict)  # Misra-Gries table, while selecting
    counted: int = 0  # segment-carrying events counted so far
    chosen: list[str] | None = None  # the segments monitored on their own; None while selecting
    multiplier: int = 1  # budget_events factor: segment monitors (with the pooled one) + 1
    monitors: dict[str, ModelMonitor] = field(default_factory=dict)  # by key; the pooled one under POOLED_KEY
    events: dict[str, int] = field(default_factory=dict)  # predictions fed to each monitor
    retiring: list[ModelMonitor] = field(default_factory=list)  # dropped: their open alerts resolve next
    removed: list[str] = field(default_factory=list)  # keys dropped, until the owner has reported them
    rows: int = 0  # events fed one at a time (their positions)

    def __post_init__(self) -> None:
        self.budget: FeatureBudget | None = None  # the partition's, set by the owner: a bound on memory

    def set_budget(self, budget: FeatureBudget | None) -> None:
        self.budget = budget
        for monitor in self.monitors.values():
            monitor.budget = budget

    @property
    def enabled(self) -> bool:
        return self.max_segments > 0

    def route(self, segment: str | Mapping[str, str] | None) -> str | None:
        """The key of the monitor that watches ``segment``; None while selecting or without a segment.

        >>> SegmentMonitors("m").route({"region": "eu"}) is None  # still selecting
        True
        """
        key = _key(segment)
        if key is None or self.chosen is None:
            return None
        return key if key in self.chosen else POOLED_KEY

    def observe_predictions(self, batch: PredictionColumns) -> None:
        """Feed predictions (with their ``segments``): counted while selecting, then given to their monitors."""
        if not self.enabled or batch.segments is None:
            return
        keys = batch.segments
        start = 0
        while self.chosen is None and start < len(keys):  # selecting: count, until the choice is made
            key = keys[start]
            start += 1
            if key is not None:
                self._count(key)
        if self.chosen is None or start >= len(keys):
            return
        for route, rows in self._groups(keys, start).items():
            self.events[route] = self.events.get(route, 0) + len(rows)
            self._monitor(route).observe_predictions(batch.take(rows))

    def observe_pairs(self, batch: PairColumns) -> None:
        """Feed joined pairs to the monitor of each prediction's segment."""
        if not self.enabled or batch.segments is None or self.chosen is None:
            return
        for route, rows in self._groups(batch.segments, 0).items():
            self._monitor(route).observe_pairs(batch.take(rows))

    def _groups(self, keys: list[str | None], start: int) -> dict[str, np.ndarray]:
        groups: dict[str, list[int]] = {}
        for i in range(start, len(keys)):
            route = self.route(keys[i])
            if route is not None:
                groups.setdefault(route, []).append(i)
        return {route: np.asarray(rows, dtype=np.int64) for route, rows in groups.items()}

    def observe_prediction(
        self,
        segment: str | Mapping[str, str] | None,
        features: Mapping[str, FeatureValue],
        score: float | None,
        ts: float,
        model_version: str,
        prediction: Any = None,
    ) -> None:
        """Feed one prediction (``segment``: its labels or their :func:`segment_key`)."""
        self.observe_predictions(
            PredictionColumns.from_rows(
                [features],
                [ts],
                [score],
                [prediction] if prediction is not None else None,
                model_version,
                [_key(segment)],
                first_seq=self._next_row(),
            )
        )

    def observe_outcome(
        self,
        segment: str | Mapping[str, str] | None,
        prediction: Any,
        label: Any,
        ts: float,
        score: float | None = None,
    ) -> None:
        """Feed one prediction joined with its label to the monitor of the prediction's segment."""
        self.observe_pairs(
            PairColumns.from_pairs([(prediction, label, score)], [ts], self._next_row(), [_key(segment)])
        )

    def _next_row(self) -> int:
        self.rows += 1
        return self.rows - 1

    def alerts(self, now: float | None = None, model: ModelMonitor | None = None) -> list[Alert]:
        """Alert transitions of every segment monitor since the last call; each alert carries its segment.

        With ``model`` (whose own alerts were taken first), a key the model
        alerts on opens no new episode in a segment once two or more segments
        hold its condition: a change across the population then makes the
        model's alert and at most one segment's, not one per segment, while a
        change confined to one segment still alerts with that segment. A
        segment held back so fires where the model's alert resolves, if it
        still holds.
        """
        out: list[Alert] = []
        for monitor in self.retiring:
            out += monitor.alert_book.close_all(set(), 0.0, now or 0.0)
        self.retiring = []
        if model is None:
            return out + [a for m in self.monitors.values() for a in m.alerts(now)]
        opened = _Timeline({text: True for text in model.alert_book.open}, after=True)
        for position, text, is_open, _ in model.transitions:
            opened.add(text, position, is_open)
        holding = [_Timeline(dict(m.holding)) for m in self.monitors.values()]
        for timeline, monitor in zip(holding, self.monitors.values(), strict=True):
            for position, text, active in monitor.pending_changes():
                timeline.add(text, position, active)
        releases = [
            (position, key_from_text(text), at) for position, text, is_open, at in model.transitions if not is_open
        ]

        def held(key: AlertKey, position: int) -> bool:
            text = key_text(key)
            return opened.at(text, position) and sum(t.at(text, position) for t in holding) >= 2

        for monitor in self.monitors.values():
            out += monitor.alerts(now, held, releases)
        return out

    def reconfigure(self, config: MonitorConfig, max_segments: int | None = None) -> None:
        """Apply the model's new configuration to every segment monitor.

        A different ``max_segments`` restarts the selection: today's segment
        monitors are dropped (their open alerts resolve at the next
        :meth:`alerts`) and the next ``selection_events`` choose again.
        """
        self.config = config
        if max_segments is not None and max_segments != self.max_segments:
            self.max_segments = max_segments
            self.retiring += self.monitors.values()
            self.removed += list(self.monitors)
            self.monitors, self.events, self.counts, self.counted, self.chosen = {}, {}, {}, 0, None
            return
        for monitor in self.monitors.values():
            monitor.reconfigure(self._config())

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests of the segment monitors; returns how many."""
        done = 0
        for monitor in self.monitors.values():
            if done >= limit:
                break
            done += monitor.calibrate_pending(limit - done)
        return done

    def status(self) -> str:
        """The worst status over the segment monitors: ``ok``, ``warning`` or ``critical``."""
        return max((m.status() for m in self.monitors.values()), key=STATUS_RANK.__getitem__, default="ok")

    def open_alerts(self) -> int:
        """Alerts firing now in any segment."""
        return sum(len(m.alert_book.open) for m in self.monitors.values())

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per monitored segment key: labels, predictions fed, status, open alerts, pooled or not, and metric."""
        out: dict[str, dict[str, Any]] = {}
        for key, monitor in self.monitors.items():
            entry: dict[str, Any] = {
                "segment": monitor.segment,
                "events": self.events.get(key, 0),
                "monitored": True,
                "pooled": key == POOLED_KEY,
                "status": monitor.status(),
                "open_alerts": len(monitor.alert_book.open),
            }
            metric = monitor.metric()
            if metric is not None:
                entry |= {"metric": metric[0], metric[0]: round(metric[1], 6)}
            out[key] = entry
        return out

    def _count(self, key: str) -> None:
        """Misra-Gries: count ``key``, or make room by decrementing every count."""
        self.counted += 1
        counts = self.counts
        if key == POOLED_KEY:
            pass  # a user segment spelled like the pooled one is pooled, never chosen
        elif key in counts:
            counts[key] += 1
        elif len(counts) < self.table_size:
            counts[key] = 1
        else:
            self.counts = {k: c - 1 for k, c in counts.items() if c > 1}
        if self.counted >= self.selection_events:
            self._select()

    def _select(self) -> None:
        eligible = sorted((-c, k) for k, c in self.counts.items() if c >= self.min_events)
        self.chosen = [k for _, k in eligible[: self.max_segments]]
        self.multiplier = len(self.chosen) + 2
        self.counts = {}
        for key in self.chosen:
            self._monitor(key)

    def _config(self) -> MonitorConfig:
        return replace(self.config, budget_events=self.config.budget_events * self.multiplier)

    def _monitor(self, key: str) -> ModelMonitor:
        monitor = self.monitors.get(key)
        if monitor is None:
            labels = dict(POOLED) if key == POOLED_KEY else json.loads(key)
            monitor = self.monitors[key] = ModelMonitor(self.model_id, self._config(), segment=labels)
            monitor.budget = self.budget
        return monitor


class _Timeline:
    """A boolean per key over event positions: its value before a flush, and its changes during it.

    ``after``: the given values are those after the changes (a book's open
    alerts once it has processed them), else before them (detectors' holding
    states before their changes are processed).
    """

    def __init__(self, values: dict[str, bool], after: bool = False) -> None:
        self.values = values
        self.after = after
        self.changes: dict[str, list[tuple[int, bool]]] = {}

    def add(self, text: str, position: int, value: bool) -> None:
        self.changes.setdefault(text, []).append((position, value))

    def at(self, text: str, position: int) -> bool:
        """The value right after the changes at ``position``."""
        changes = sorted(self.changes.get(text, []))
        before = [value for p, value in changes if p <= position]
        if before:
            return before[-1]
        if changes and self.after:
            return not changes[0][1]
        return self.values.get(text, False)
