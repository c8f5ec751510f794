"""The prediction/outcome join of one model, bounded in memory and exact in its counts."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

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
    saved_order: int = 0  # the next order number of an entry saved to the stores' checkpoint

    def __post_init__(self) -> None:
        self._holes = 0  # entries deleted from ``pending`` and ``early`` since they were last compacted
        # ids whose entry was added or removed since the stores were last saved (all, for stores never saved)
        self.touched: tuple[set[str], set[str], set[str]] = (
            set(self.pending),
            set(self.early),
            set(self.recently_joined),
        )
        self.fields_written = 0  # entries saved one by one since the stores were last saved whole

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
        key = event.prediction_id
        waiting = self.early.pop(key, None)
        if waiting is not None:
            self.touched[1].add(key)
            self._deleted()
            return [self._join(key, event.prediction, event.score, waiting[0], at, segment)]
        if self.pending.pop(key, None) is not None:  # a re-delivered prediction waits as the newest
            self._deleted()
        self.pending[key] = (event.prediction, event.score, event.timestamp, segment)
        self.touched[0].add(key)
        if len(self.pending) > self.max_pending_predictions:
            dropped = self._drop_oldest(0, len(self.pending) - self.max_pending_predictions)
            self.expired += dropped
        return []

    def add_outcome(self, event: OutcomeEvent, at: float | None = None) -> list[JoinedPair]:
        """Join or keep one outcome at event time ``at`` (its own by default)."""
        at = event.timestamp if at is None else at
        key = event.prediction_id
        found = self.pending.pop(key, None)
        if found is not None:
            self.touched[0].add(key)
            self._deleted()
            prediction, score, _, segment = found
            return [self._join(key, prediction, score, event.label, at, segment)]
        if key in self.recently_joined or key in self.early:
            self.duplicate_outcomes += 1
            return []
        self.early[key] = (event.label, at)
        self.touched[1].add(key)
        if len(self.early) > self.max_pending_outcomes:
            self.unmatched_outcomes += self._drop_oldest(1, len(self.early) - self.max_pending_outcomes)
        return []

    def evict_oldest(self, count: int) -> int:
        """Give up the ``count`` oldest waiting predictions (a partition-wide memory bound); returns how many."""
        done = self._drop_oldest(0, count)
        self.expired += done
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
        recent = self.recently_joined
        recent.pop(key, None)  # the newest at the end, always (the stores' checkpoint relies on it)
        recent[key] = None
        self.touched[2].add(key)
        if len(recent) > self.max_recently_joined + self.max_recently_joined // 8:
            # the oldest go in bulk, into a new dict: dropping one per join costs a scan of the deleted
            # entries a dict keeps at its front (microseconds per join at 10,000 ids)
            ids = list(recent)
            self.touched[2].update(ids[: -self.max_recently_joined])
            self.recently_joined = dict.fromkeys(ids[-self.max_recently_joined :])
        return JoinedPair(key, prediction, score, label, at, segment)

    def _advance(self, at: float) -> None:
        """Move prediction time forward and expire what waited too long."""
        if at <= self.clock:
            return
        self.clock = at
        horizon = at - self.lateness_budget_s
        while self.pending and next(iter(self.pending.values()))[2] < horizon:
            key = next(iter(self.pending))
            del self.pending[key]
            self.touched[0].add(key)
            self.expired += 1
            self._deleted()
        horizon = at - self.outcome_grace_s
        while self.early and next(iter(self.early.values()))[1] < horizon:
            key = next(iter(self.early))
            del self.early[key]
            self.touched[1].add(key)
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

    def _drop_oldest(self, which: int, count: int) -> int:
        """Remove the ``count`` oldest entries of ``pending`` (0) or ``early`` (1); return how many went."""
        store: dict[str, Any] = self.pending if which == 0 else self.early
        oldest = list(itertools.islice(store, count))
        for key in oldest:
            del store[key]
        self.touched[which].update(oldest)
        self._deleted(len(oldest))
        return len(oldest)

    # -- the stores, for their checkpoint (streams.join_store) ---------------------------------

    def stores(self) -> tuple[dict[str, Pending], dict[str, Early], dict[str, None]]:
        return self.pending, self.early, self.recently_joined
