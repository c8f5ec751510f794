"""All the detectors of one model, fed by its predictions and joined outcomes as columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detectors.alerts import Alert, AlertBook, AlertKey, key_from_text, key_text
from detectors.base import Change
from detectors.columns import FeatureValue, Label, PairColumns, PredictionColumns
from detectors.concept_drift import ConceptDriftMonitor
from detectors.feature_monitor import FeatureMonitor, KeyedChange, shift_changes
from detectors.missing_rate import MissingRateMonitor, TypeChangeMonitor
from detectors.monitor_config import FeatureBudget, MonitorConfig
from detectors.new_feature import NewFeature
from detectors.performance import infer_task
from detectors.performance_suite import PerformanceSuite
from detectors.reference import NumericProfile
from detectors.windowed_tests import WindowedDriftMonitor

__all__ = ["FeatureMonitor", "ModelMonitor", "MonitorConfig"]

PREDICTION_DRIFT: AlertKey = ("prediction_drift", None, "prediction")
Held = Callable[[AlertKey, int], bool]


@dataclass
class ModelMonitor:
    """Drift, data-quality and performance detectors for one model.

    :meth:`observe_predictions` and :meth:`observe_pairs` take the model's
    events in event-time order as columns; every detector records where its
    condition changed, and :meth:`alerts` turns those changes, in the order of
    the events, into alerts. ``observe_prediction`` and ``observe_outcome``
    feed one event.

    Examples
    --------
    >>> rng = np.random.default_rng(11)
    >>> x = rng.normal(np.where(np.arange(3000) < 1500, 0.0, 1.0), 1.0)
    >>> monitor = ModelMonitor("churn")
    >>> batch = PredictionColumns.from_rows([{"x": v, "plan": "pro"} for v in x.tolist()], ts=np.arange(3000.0),
    ...                                     scores=[0.5] * 3000, version="v1")
    >>> monitor.observe_predictions(batch)
    >>> [(a.status, a.evidence.kind, a.evidence.feature, a.evidence.window_end) for a in monitor.alerts(3000.0)]
    [('firing', 'data_drift', 'x', 1523.0)]
    """

    model_id: str
    config: MonitorConfig = field(default_factory=MonitorConfig)
    features: dict[str, FeatureMonitor] = field(default_factory=dict)
    overflow_feature_values: int = 0  # values of features beyond max_features, ignored
    score: WindowedDriftMonitor | None = None
    classes: WindowedDriftMonitor | None = None  # the mix of predicted classes (classification)
    predictions: int = 0
    performance: PerformanceSuite | None = None
    book: AlertBook | None = None
    model_version: str = ""
    removed_features: list[str] = field(default_factory=list)  # dropped by reconfigure, until reported
    segment: dict[str, str] | None = None  # the slice this monitor watches (its alerts carry it); None: the model
    holding: dict[str, bool] = field(default_factory=dict)  # key text -> condition as of its latest change
    rows: int = 0  # events fed one at a time (their positions)

    def __post_init__(self) -> None:
        if self.book is None:
            self.book = AlertBook(self.model_id, cooldown_s=self.config.alert_cooldown_s, segment=self.segment)
        self.reference: dict[str, Any] = {}  # uploaded profiles by feature: restored by the owner, not checkpointed
        self.budget: FeatureBudget | None = None  # the partition's, set by the owner: a bound on memory
        self._changes: list[tuple[int, float, str, AlertKey, Change]] = []  # until alerts()
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []  # positions and event times fed since alerts()
        self.transitions: list[tuple[int, str, bool, float]] = []  # (position, key text, open, at): last alerts()

    @property
    def alert_book(self) -> AlertBook:
        assert self.book is not None
        return self.book

    # -- feeding ---------------------------------------------------------------------------

    def observe_predictions(self, batch: PredictionColumns) -> None:
        """Feed predictions in event-time order."""
        n = len(batch)
        if not n:
            return
        self.model_version = batch.versions[-1]
        self._rows.append((batch.seq, batch.ts))
        found: list[tuple[KeyedChange, int]] = []  # (change, its batch) -> recorded against batch rows
        if self.performance is not None:
            found += [(kc, 0) for kc in self._suite_predictions(batch)]
        starts = self._add_new_features(batch)
        for name, monitor in self.features.items():
            start = starts.get(name, 0)
            column = batch.column(name)
            changes = monitor.update_many(column[start:] if start else column, batch.ts[start:])
            found += [((key, Change(c.index + start, c.active, c.evidence)), 0) for key, c in changes]
        found += [(kc, 0) for kc in self._prediction_drift(batch)]
        self.predictions += n
        self._record([kc for kc, _ in found], batch.seq, batch.ts, batch.versions)

    def observe_pairs(self, batch: PairColumns) -> None:
        """Feed joined (prediction, label) pairs in event-time order."""
        if not len(batch):
            return
        self._rows.append((batch.seq, batch.ts))
        if self.performance is None:
            self.performance = PerformanceSuite.create(
                self.config.task or infer_task(batch.predictions[0]), self.config
            )
        self._record(self._suite_outcomes(batch), batch.seq, batch.ts, None)

    def observe_prediction(
        self,
        features: Mapping[str, FeatureValue],
        score: float | None,
        ts: float,
        model_version: str,
        prediction: Label | None = None,
    ) -> None:
        """Feed one prediction."""
        self.observe_predictions(
            PredictionColumns.from_rows(
                [features],
                [ts],
                [score],
                [prediction] if prediction is not None else None,
                model_version,
                first_seq=self._next_row(),
            )
        )

    def observe_outcome(self, prediction: Label, label: Label, ts: float, score: float | None = None) -> None:
        """Feed one prediction joined with its true label."""
        self.observe_pairs(PairColumns.from_pairs([(prediction, label, score)], [ts], first_seq=self._next_row()))

    def _next_row(self) -> int:
        self.rows += 1
        return self.rows - 1

    def _record(self, found: list[KeyedChange], seq: np.ndarray, ts: np.ndarray, versions: list[str] | None) -> None:
        for key, change in found:
            version = versions[change.index] if versions is not None else self.model_version
            self._changes.append((int(seq[change.index]), float(ts[change.index]), version, key, change))

    def _add_new_features(self, batch: PredictionColumns) -> dict[str, int]:
        """Start monitoring the batch's new features at their first value; return where each starts."""
        cfg = self.config
        firsts = []
        for name, values in batch.features.items():
            if name in self.features or not cfg.monitors(name):
                continue
            first = next((i for i, v in enumerate(values) if v is not None), None)
            if first is not None:
                firsts.append((first, name))
        starts: dict[str, int] = {}
        for first, name in sorted(firsts):
            values = batch.features[name]
            if self._add_feature(name, values[first], self.predictions + first, float(batch.ts[first])):
                starts[name] = first
            else:  # over a cap: its values in this batch are counted, not monitored
                self.overflow_feature_values += sum(v is not None for v in values[first + 1 :])
        return starts

    def _prediction_drift(self, batch: PredictionColumns) -> list[KeyedChange]:
        """The score distribution and the predicted-class mix: one condition, held while either holds."""
        parts: list[tuple[int, list[Change]]] = []
        before = self._prediction_parts_active()
        rows = np.flatnonzero(~np.isnan(batch.scores))
        if len(rows):
            if self.score is None:
                self.score = self._windowed(None, True, "prediction_drift", label="score")
            if self.score is not None:
                parts.append((0, shift_changes(self.score.update_many(batch.scores[rows], batch.ts[rows]), rows)))
        classified = (self.config.task or infer_task(batch.predictions[0])) == "classification"
        labelled = np.flatnonzero([p is not None for p in batch.predictions]) if classified else None
        if labelled is not None and len(labelled):
            if self.classes is None:
                self.classes = self._windowed(None, False, "prediction_drift", label="predicted class")
            if self.classes is not None:
                labels = [batch.predictions[i] for i in labelled.tolist()]
                parts.append((1, shift_changes(self.classes.update_many(labels, batch.ts[labelled]), labelled)))
        return [(PREDICTION_DRIFT, c) for c in _any_of(parts, before)]

    def _prediction_parts_active(self) -> list[bool]:
        return [bool(self.score and self.score.active), bool(self.classes and self.classes.active)]

    # -- alerts ----------------------------------------------------------------------------

    def alerts(
        self,
        now: float | None = None,
        held: Held | None = None,
        releases: Sequence[tuple[int, AlertKey, float]] = (),
    ) -> list[Alert]:
        """Alert transitions (firing or resolved) of the changes recorded since the last call, in event order.

        ``now`` is the wall-clock time of the decision (``detected_at``); by
        default the latest event time. ``held(key, position)`` says whether a
        change to active must wait (a segment's, while its model alerts on the
        same thing); ``releases`` are (position, key, event time) at which a held
        key may fire (its model's alert resolved there), if it still holds.
        """
        book = self.alert_book
        times = np.concatenate([ts for _, ts in self._rows]) if self._rows else np.zeros(0)
        seqs = np.concatenate([s for s, _ in self._rows]) if self._rows else np.zeros(0, dtype=np.int64)
        order = np.argsort(seqs, kind="stable")
        seqs, times = seqs[order], times[order]
        detected = now if now is not None else (float(times[-1]) if len(times) else 0.0)
        changes = sorted(self._changes, key=lambda c: (c[0], key_text(c[3])))
        self._changes, self._rows, self.transitions = [], [], []
        out: list[Alert] = []
        started: dict[str, int] = {}
        pending = sorted(releases, key=lambda r: (r[0], key_text(r[1])))
        for seq, ts, version, key, change in changes:
            while pending and pending[0][0] < seq:
                position, key_, at = pending.pop(0)
                out += self._note(self.alert_book.release(key_, at, self.model_version, detected), position, at)
            out += self._fire_due(seqs, times, seq, started, detected)
            text = key_text(key)
            self.holding[text] = change.active
            evidence = change.evidence
            if key[0] == "data_drift" and change.active:
                evidence = replace(evidence, top_features=self.top_drifting())
            was_waiting = text in book.waiting
            fired = book.change(
                evidence,
                change.active,
                ts,
                version,
                detected,
                key,
                held=bool(held and change.active and held(key, seq)),
            )
            if text in book.waiting and not was_waiting:
                started[text] = seq
            out += self._note(fired, seq, ts)
        for position, key_, at in pending:
            out += self._note(self.alert_book.release(key_, at, self.model_version, detected), position, at)
        out += self._fire_due(seqs, times, None, started, detected)
        if book.open or book.waiting:  # episodes of detectors that stopped running end
            watched = {key_text(key) for key, _ in self._detectors()}
            last = float(times[-1]) if len(times) else 0.0
            out += self._note(book.close_all(watched, last, detected), int(seqs[-1]) if len(seqs) else 0, last)
        return out

    def _fire_due(
        self, seqs: np.ndarray, times: np.ndarray, before: int | None, started: dict[str, int], detected: float
    ) -> list[Alert]:
        """Fire the conditions whose cooldown ended at an event before position ``before``."""
        book, out = self.alert_book, []
        for text in list(book.waiting):
            key = key_from_text(text)
            due = book.due(key)
            if due is None:
                continue
            p = int(np.searchsorted(times, due, side="left"))
            if text in started:
                p = max(p, int(np.searchsorted(seqs, started[text], side="right")))
            if p < len(seqs) and (before is None or seqs[p] < before):
                at = float(times[p])
                out += self._note(book.release(key, at, self.model_version, detected), int(seqs[p]), at)
        return out

    def _note(self, alerts: list[Alert], position: int, at: float) -> list[Alert]:
        for alert in alerts:
            self.transitions.append((position, alert.key, alert.status == "firing", at))
        return alerts

    def pending_changes(self) -> list[tuple[int, str, bool]]:
        """(position, key text, active) of the changes recorded since the last :meth:`alerts`."""
        return [(seq, key_text(key), change.active) for seq, _, _, key, change in self._changes]

    def holding_keys(self) -> list[AlertKey]:
        """The keys whose detectors hold their condition now, alerted or not."""
        return [key for key, detector in self._detectors() if detector.active]

    # -- configuration, summaries ----------------------------------------------------------

    def calibrate_pending(self, limit: int) -> int:
        """Calibrate up to ``limit`` windowed tests whose reference just completed; returns how many."""
        done = 0
        for windowed in [f.windowed for f in self.features.values()] + [self.score, self.classes]:
            if done >= limit:
                break
            if windowed is not None and windowed.needs_calibration:
                windowed.calibrate_now()
                done += 1
        return done

    def top_drifting(self, limit: int = 5) -> tuple[tuple[str, float], ...]:
        """The features closest to (or past) a drift alert, with their scores (1 or more: significant)."""
        scores = sorted(((f.drift_score, name) for name, f in self.features.items()), reverse=True)
        return tuple((name, round(score, 3)) for score, name in scores[:limit] if score > 0)

    def reconfigure(self, config: MonitorConfig) -> None:
        """Apply a new configuration to the running detectors.

        Thresholds change at once; sizes (baseline, windows) apply to detectors
        created from now on; a feature no longer monitored is dropped (its open
        alerts resolve); a new task restarts performance tracking, and another
        concept-drift detector restarts concept-drift detection.
        """
        self.config = config
        self.removed_features += [name for name in self.features if not config.monitors(name)]
        self.features = {name: f for name, f in self.features.items() if config.monitors(name)}
        for monitor in self.features.values():
            monitor.missing.set_min_jump(config.missing_rate_min_jump)
        for windowed in [f.windowed for f in self.features.values()] + [self.score, self.classes]:
            if windowed is not None:
                windowed.set_budget(config.budget_events)
        self.alert_book.cooldown_s = config.alert_cooldown_s
        if self.performance is not None and config.task not in (None, self.performance.task):
            self.performance = None
        elif self.performance is not None:
            self.performance.realized.min_drop = config.performance_min_drop
            concept = self.performance.concept
            if concept.method != config.concept_drift_detector:  # another detector starts afresh
                self.performance.concept = ConceptDriftMonitor(
                    concept.binary, config.baseline_events, method=config.concept_drift_detector
                )

    def _detectors(self) -> list[tuple[AlertKey, Any]]:
        found: list[tuple[AlertKey, Any]] = []
        for monitor in self.features.values():
            found += monitor.detectors()
        if self.score is not None or self.classes is not None:
            found.append((PREDICTION_DRIFT, _AnyActive(self._prediction_parts_active)))
        if self.performance is not None:
            found += self.performance.detectors()
        return found

    def metric(self) -> tuple[str, float] | None:
        """The rolling performance metric, once labels have joined."""
        if self.performance is None or self.performance.n == 0:
            return None
        return self.performance.realized.metric_name, self.performance.realized.rolling

    def set_reference(self, profiles: dict[str, Any]) -> None:
        """Test each feature against an uploaded reference profile from now on."""
        self.reference = dict(profiles)
        for name, profile in profiles.items():
            if name not in self.features and self.config.monitors(name):  # expected, not seen yet
                self._add_feature(name, 0.0 if isinstance(profile, NumericProfile) else "", None, None)
        for name, monitor in self.features.items():
            if name in profiles:
                monitor.windowed = self._windowed(name, monitor.numeric)
                monitor.out_of_range = None  # rebuilt against the new range
                monitor.missing.expected_rate = profiles[name].missing_rate

    def _windowed(
        self, name: str | None, numeric: bool, kind: str = "data_drift", label: str | None = None
    ) -> WindowedDriftMonitor | None:
        profile = self.reference.get(name) if name is not None else None
        if profile is None and not self.config.reference_events:
            return None
        return WindowedDriftMonitor(
            name,
            profile=profile,
            kind=kind,
            n_features=max(20, len(self.features) + 3),
            window=self.config.window,
            budget_events=self.config.budget_events,
            label=label,
            reference_size=self.config.reference_events or 1000,
            dtype=None if numeric else "categorical",
        )

    def _add_feature(self, name: str, value: FeatureValue, first_event: int | None, ts: float | None) -> bool:
        """Start monitoring a feature: at its first value (``ts``), or expected by the reference (``None``).

        False (and the value counted in ``overflow_feature_values``) beyond the
        model's ``max_features`` or the partition's budget.
        """
        if len(self.features) >= self.config.max_features or (self.budget is not None and not self.budget.take()):
            self.overflow_feature_values += 1
            return False
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cfg = self.config
        missing = MissingRateMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump)
        what = "text instead of numbers" if numeric else "numbers instead of categories"
        types = TypeChangeMonitor(name, cfg.baseline_events, cfg.baseline_events, cfg.missing_rate_min_jump, what=what)
        events = self.predictions if first_event is None else first_event
        schema_known = bool(self.reference) or events >= cfg.baseline_events
        # The schema rests on the reference's rows, or on every prediction so far.
        schema_events = max((profile.n for profile in self.reference.values()), default=events)
        new = (
            NewFeature(name, events, ts, max(schema_events, 1), cfg.baseline_events)
            if ts is not None and schema_known
            else None
        )
        self.features[name] = FeatureMonitor(
            name,
            numeric,
            missing,
            self._windowed(name, numeric),
            type_changes=types,
            new=new,
            window=cfg.window,
        )
        return True

    def status(self) -> str:
        return self.alert_book.status()

    def _suite_predictions(self, batch: PredictionColumns) -> list[KeyedChange]:
        assert self.performance is not None
        return self.performance.observe_predictions(batch.predictions, batch.scores, batch.ts)

    def _suite_outcomes(self, batch: PairColumns) -> list[KeyedChange]:
        assert self.performance is not None
        return self.performance.observe_outcomes(batch.predictions, batch.labels, batch.scores, batch.ts)


class _AnyActive:
    __slots__ = ("parts",)

    def __init__(self, parts: Callable[[], list[bool]]) -> None:
        self.parts = parts

    @property
    def active(self) -> bool:
        return any(self.parts())


def _any_of(parts: list[tuple[int, list[Change]]], initial: list[bool]) -> list[Change]:
    """Changes of the condition "any part holds", from each part's changes (indices in one batch)."""
    state = list(initial)
    out: list[Change] = []
    for _, which, change in sorted((c.index, part, c) for part, changes in parts for c in changes):
        before = any(state)
        state[which] = change.active
        if any(state) != before:
            out.append(change)
    return out
