"""The prediction/outcome join of one model, bounded in memory and exact in its counts."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TypeVar

from detectors.columns import Label
from streams.events import OutcomeEvent, PredictionEvent

Pending = tuple[Label, float | None, float, str | None]  # prediction, score, its event time, segment key
Early = tuple[Label, float]  # label, the event time it arrived at


@dataclass(frozen=True, slots=True)
class JoinedPair:
    """A prediction with its true label, at the event time the pair came together."""

    prediction_id: str
    prediction: Label
    score: float | None
    label: Label
    timestamp: float  # the event time of the later half: when the label met its prediction
    segment: str | None = None  # the prediction's segment key (canonical JSON), if it had one


@dataclass
class LabelJoin:
    """Joins outcomes to predictions by ``prediction_id``, in event-time order, bounded and exact.

    Events come in event-time order (:mod:`streams.event_time`), each with the
    event time decisions use (``at``). Time here is the predictions' event
    time: the latest ``at`` of a prediction. A prediction waits for its outcome
    until that time passes its own by ``lateness_budget_s``; an outcome that
    comes before its prediction waits on the same clock, until it has moved
    ``outcome_grace_s`` past the outcome's own time, so an outcome is never
    given up while its prediction may still be coming through a lagging
    partition. Both stores are bounded: overflow evicts the oldest entry,
    counted as ``expired`` (predictions) or ``unmatched_outcomes`` (outcomes).
    A second outcome for a prediction counts once, as a duplicate.

    >>> join = LabelJoin()
    >>> join.add_outcome(OutcomeEvent("m", "p1", 1, 10.0), at=10.0)  # the label first
    []
    >>> join.add_prediction(PredictionEvent("m", "p1", {}, 1, 0.9, "", 9.0, None), at=12.0)[0].timestamp
    12.0
    >>> join.add_outcome(OutcomeEvent("m", "p1", 1, 13.0), at=13.0), join.joined, join.duplicate_outcomes
    ([], 1, 1)
    """

    lateness_budget_s: float = 24 * 3600.0
    outcome_grace_s: float = 600.0
    max_pending_predictions: int = 100_000
    max_pending_outcomes: int = 20_000
    max_recently_joined: int = 10_000  # the newest joined ids kept to recognise duplicate outcomes (up to 1/8 more)
    # insertion-ordered, oldest first
    pending: dict[str, Pending] = field(default_factory=dict)
    early: dict[str, Early] = field(default_factory=dict)
    recently_joined: dict[str, None] = field(default_factory=dict)
    clock: float = 0.0
    joined: int = 0
    expired: int = 0
    unmatched_outcomes: int = 0
    duplicate_outcomes: int = 0

    def __post_init__(self) -> None:
        self._holes = 0  # entries deleted from ``pending`` and ``early`` since they were last compacted

    def add_prediction(
        self,
        event: PredictionEvent,
        at: float | None = None,
        segment: str | None = None,
    ) -> list[JoinedPair]:
        """Store or join one prediction at event time ``at`` (its own by default).

        ``segment`` comes back with its pair.
        """
        at = event.timestamp if at is None else at
        self._advance(at)
        if event.prediction_id in self.recently_joined:
            return []  # a re-delivered prediction: it has its label already
        waiting = self.early.pop(event.prediction_id, None)
        if waiting is not None:
            self._deleted()
            return [self._join(event.prediction_id, event.prediction, event.score, waiting[0], at, segment)]
        if self.pending.pop(event.prediction_id, None) is not None:  # a re-delivered prediction waits as the newest
            self._deleted()
        self.pending[event.prediction_id] = (event.prediction, event.score, event.timestamp, segment)
        if len(self.pending) > self.max_pending_predictions:
            dropped = _drop_oldest(self.pending, len(self.pending) - self.max_pending_predictions)
            self.expired += dropped
            self._deleted(dropped)
        return []

    def add_outcome(self, event: OutcomeEvent, at: float | None = None) -> list[JoinedPair]:
        """Join or keep one outcome at event time ``at`` (its own by default)."""
        at = event.timestamp if at is None else at
        key = event.prediction_id
        found = self.pending.pop(key, None)
        if found is not None:
            self._deleted()
            prediction, score, _, segment = found
            return [self._join(key, prediction, score, event.label, at, segment)]
        if key in self.recently_joined or key in self.early:
            self.duplicate_outcomes += 1
            return []
        self.early[key] = (event.label, at)
        if len(self.early) > self.max_pending_outcomes:
            dropped = _drop_oldest(self.early, len(self.early) - self.max_pending_outcomes)
            self.unmatched_outcomes += dropped
            self._deleted(dropped)
        return []

    def evict_oldest(self, count: int) -> int:
        """Give up the ``count`` oldest waiting predictions (a partition-wide memory bound); returns how many."""
        done = _drop_oldest(self.pending, count)
        self.expired += done
        self._deleted(done)
        return done

    def _join(
        self,
        key: str,
        prediction: Label,
        score: float | None,
        label: Label,
        at: float,
        segment: str | None,
    ) -> JoinedPair:
        self.joined += 1
        self.recently_joined[key] = None
        if len(self.recently_joined) > self.max_recently_joined + self.max_recently_joined // 8:
            # the oldest go in bulk, into a new dict: dropping one per join costs a scan of the deleted
            # entries a dict keeps at its front (microseconds per join at 10,000 ids)
            newest = list(self.recently_joined)[-self.max_recently_joined :]
            self.recently_joined = dict.fromkeys(newest)
        return JoinedPair(key, prediction, score, label, at, segment)

    def _advance(self, at: float) -> None:
        """Move prediction time forward and expire what waited too long."""
        if at <= self.clock:
            return
        self.clock = at
        horizon = at - self.lateness_budget_s
        while self.pending and next(iter(self.pending.values()))[2] < horizon:
            del self.pending[next(iter(self.pending))]
            self.expired += 1
            self._deleted()
        horizon = at - self.outcome_grace_s
        while self.early and next(iter(self.early.values()))[1] < horizon:
            del self.early[next(iter(self.early))]
            self.unmatched_outcomes += 1
            self._deleted()

    def _deleted(self, count: int = 1) -> None:
        """Count deleted entries; past a bound, rebuild both stores without them, in the same order.

        A dict keeps a deleted entry's slot until it grows, and finding its
        oldest entry (expiry, at every prediction) scans every deleted slot
        before it: with labels hours late and 100,000 predictions waiting, tens
        of microseconds per prediction. Rebuilding after about sqrt(170 n)
        deletions bounds the scan and the rebuild's share alike.
        """
        self._holes += count
        if self._holes > max(1024, math.isqrt(170 * (len(self.pending) + len(self.early)))):
            self._compact()

    def _compact(self) -> None:
        self.pending, self.early = dict(self.pending), dict(self.early)
        self._holes = 0


V = TypeVar("V")


def _drop_oldest(store: dict[str, V], count: int) -> int:
    """Remove the ``count`` oldest entries of an insertion-ordered dict; return how many went."""
    oldest = list(itertools.islice(store, count))
    for key in oldest:
        del store[key]
    return len(oldest)
