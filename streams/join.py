"""The prediction/outcome join of one model, bounded in memory and exact in its counts."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from streams.events import Label, OutcomeEvent, PredictionEvent


@dataclass(frozen=True, slots=True)
class JoinedPair:
    """A prediction with its true label."""

    prediction_id: str
    prediction: Label
    score: float | None
    label: Label
    timestamp: float  # the prediction's event time
    segment: str | None = None  # the prediction's segment key (canonical JSON), if it had one


@dataclass
class LabelJoin:
    """Joins outcomes to predictions by ``prediction_id``, in either arrival order.

    Time is the prediction stream's event time (the largest prediction
    timestamp seen), so outcomes whose timestamps come from another clock never
    expire predictions early. A prediction waits for its outcome until that
    time passes its own timestamp by ``lateness_budget_s``; an outcome that
    comes first waits until that time has advanced ``outcome_grace_s`` past
    its arrival. Both stores are
    bounded: overflow evicts the oldest entry, counted as ``expired``
    (predictions) or ``unmatched_outcomes`` (outcomes). A second outcome for a
    prediction counts once, as a duplicate.

    >>> join = LabelJoin()
    >>> join.add_outcome(OutcomeEvent("m", "p1", 1, 10.0))  # the label first
    []
    >>> join.add_prediction(PredictionEvent("m", "p1", {}, 1, 0.9, "", 9.0, None))[0].label
    1
    >>> join.add_outcome(OutcomeEvent("m", "p1", 1, 11.0)), join.joined, join.duplicate_outcomes
    ([], 1, 1)
    """

    lateness_budget_s: float = 24 * 3600.0
    outcome_grace_s: float = 600.0
    max_pending_predictions: int = 100_000
    max_pending_outcomes: int = 20_000
    max_recently_joined: int = 10_000  # ids kept to recognise duplicate outcomes
    # values are lists, not tuples: they checkpoint as plain JSON arrays
    pending: OrderedDict[str, list] = field(default_factory=OrderedDict)  # [prediction, score, timestamp(, segment)]
    early: OrderedDict[str, list] = field(default_factory=OrderedDict)  # [label, arrival in prediction time]
    recently_joined: OrderedDict[str, None] = field(default_factory=OrderedDict)
    clock: float = 0.0
    joined: int = 0
    expired: int = 0
    unmatched_outcomes: int = 0
    duplicate_outcomes: int = 0

    def add_prediction(self, event: PredictionEvent, segment: str | None = None) -> list[JoinedPair]:
        """Store or join one prediction; ``segment`` (its segment key) comes back with its pair."""
        self._advance(event.timestamp)
        if event.prediction_id in self.recently_joined:
            return []  # a re-delivered prediction: it has its label already
        waiting = self.early.pop(event.prediction_id, None)
        if waiting is not None:
            return [self._join(event.prediction_id, event.prediction, event.score, event.timestamp, waiting[0],
                               segment)]
        entry = [event.prediction, event.score, event.timestamp]
        if segment is not None:  # only then: entries without a segment stay as small as before
            entry.append(segment)
        self.pending[event.prediction_id] = entry
        self.pending.move_to_end(event.prediction_id)
        while len(self.pending) > self.max_pending_predictions:
            self.pending.popitem(last=False)
            self.expired += 1
        return []

    def add_outcome(self, event: OutcomeEvent) -> list[JoinedPair]:
        key = event.prediction_id
        found = self.pending.pop(key, None)
        if found is not None:
            return [self._join(key, found[0], found[1], found[2], event.label, found[3] if len(found) > 3 else None)]
        if key in self.recently_joined or key in self.early:
            self.duplicate_outcomes += 1
            return []
        self.early[key] = [event.label, self.clock]  # arrival, in prediction time
        while len(self.early) > self.max_pending_outcomes:
            self.early.popitem(last=False)
            self.unmatched_outcomes += 1
        return []

    def _join(
        self, key: str, prediction: Label, score: float | None, ts: float, label: Label, segment: str | None,
    ) -> JoinedPair:
        self.joined += 1
        self.recently_joined[key] = None
        while len(self.recently_joined) > self.max_recently_joined:
            self.recently_joined.popitem(last=False)
        return JoinedPair(key, prediction, score, label, ts, segment)

    def _advance(self, ts: float) -> None:
        """Move prediction time forward and expire what waited too long."""
        if ts <= self.clock:
            return
        if self.clock == 0.0:  # outcomes that came before any prediction start waiting now
            self.early = OrderedDict((k, [label, ts]) for k, (label, _) in self.early.items())
        self.clock = ts
        horizon = ts - self.lateness_budget_s
        while self.pending and next(iter(self.pending.values()))[2] < horizon:
            self.pending.popitem(last=False)
            self.expired += 1
        horizon = ts - self.outcome_grace_s
        while self.early and next(iter(self.early.values()))[1] < horizon:
            self.early.popitem(last=False)
            self.unmatched_outcomes += 1
