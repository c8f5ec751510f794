"""Event-time order for one model: events are held until the watermark passes them.

Kafka orders records only within a partition, and one model's events come
through many (other producers' partitioners, unkeyed messages, a lagging or
restarted partition). So each model keeps the events that arrived but are not
yet safe to decide on, and releases them in event-time order once its
*watermark* has passed them: Flink's bounded out-of-orderness.

- The watermark is the newest prediction time seen minus ``max_disorder_s``.
  Predictions alone move it: outcomes stamped by another clock (a broker's, a
  labelling system's) never push it ahead of the model's own time.
- Released are the held events older than the watermark, predictions and
  outcomes together, ordered by (event time, predictions before outcomes,
  prediction id): the order does not depend on how they arrived.
- An event older than the newest one already released is *late*. It still
  counts and joins exactly; it is released at once, at the frontier (the
  newest event time released), so decisions never run backwards in time.
- When no input arrives for a while (``release(final=True)``, the worker's
  idleness rule), everything held is released.

>>> from streams.events import OutcomeEvent, PredictionEvent
>>> buffer = EventTimeBuffer(max_disorder_s=10.0)
>>> for pid, ts in [("b", 105.0), ("a", 100.0), ("c", 120.0)]:
...     buffer.add(PredictionEvent("m", pid, {}, 1, None, "", ts, None))
>>> [(e.prediction_id, t) for e, t in buffer.release()]  # the watermark is 120 - 10
[('a', 100.0), ('b', 105.0)]
>>> buffer.add(PredictionEvent("m", "z", {}, 1, None, "", 90.0, None)), buffer.late_events
(None, 1)
>>> [(e.prediction_id, t) for e, t in buffer.release(final=True)]  # late: at the frontier, 105
[('z', 105.0), ('c', 120.0)]
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field

import msgspec

from streams.events import OutcomeEvent, PredictionEvent

Event = PredictionEvent | OutcomeEvent

__all__ = ["Event", "EventTimeBuffer"]


def _event_time(event: Event) -> float:
    return event.timestamp


def _order(event: Event) -> tuple[float, int, str]:
    return (event.timestamp, 0 if isinstance(event, PredictionEvent) else 1, event.prediction_id)


@dataclass
class EventTimeBuffer:
    """The held events of one model, and how far in event time it has released them.

    Events that arrive in order are appended to ``ordered``; the few that come
    out of order go to a heap, ``strays``. Releasing merges the two: O(1) per
    event in the common case, O(log n) for a stray.
    """

    max_disorder_s: float = 10.0
    max_held: int = 200_000  # beyond this, the oldest are released early: memory stays bounded
    ordered: list[PredictionEvent | OutcomeEvent] = field(default_factory=list)
    start: int = 0  # ordered[start:] are held
    strays: list[tuple[float, int, str, PredictionEvent | OutcomeEvent]] = field(default_factory=list)  # a heap
    late: list[PredictionEvent | OutcomeEvent] = field(default_factory=list)
    newest: float = -math.inf  # the newest prediction time seen
    frontier: float = -math.inf  # the newest event time released
    late_events: int = 0
    forced: int = 0  # events released before their time because too many were held

    def __post_init__(self) -> None:
        self._last = _order(self.ordered[-1]) if self.ordered else None  # the order key of ordered[-1]
        self._stray_keys = {stray[:3] for stray in self.strays}  # a heap entry's key is unique: see _push_stray

    @property
    def watermark(self) -> float:
        return self.newest - self.max_disorder_s

    def __len__(self) -> int:
        return len(self.ordered) - self.start + len(self.strays) + len(self.late)

    def add(self, event: Event) -> None:
        """Take one arriving event."""
        if event.timestamp < self.frontier:
            self.late_events += 1
            self.late.append(event)
            return
        prediction = isinstance(event, PredictionEvent)
        if prediction and event.timestamp > self.newest:
            self.newest = event.timestamp
        key = (event.timestamp, 0 if prediction else 1, event.prediction_id)
        if len(self.ordered) == self.start or self._last is None or key >= self._last:
            self.ordered.append(event)
            self._last = key
        else:
            self._push_stray(key, event)

    def _push_stray(self, key: tuple[float, int, str], event: Event) -> None:
        """Push onto the heap under a key no other stray has, so it never compares two events (they have no order).

        Two strays share a key when an id comes twice with one event time (a re-sent or corrected event): the later
        is keyed by its content too. Comparing the events themselves would raise, and crash the worker.
        """
        if key in self._stray_keys:
            key = (key[0], key[1], f"{key[2]}\x00{msgspec.msgpack.encode(event).hex()}")
        self._stray_keys.add(key)
        heapq.heappush(self.strays, (*key, event))

    def release(self, final: bool = False, keep: int | None = None) -> list[tuple[Event, float]]:
        """The events now safe to decide on, in event-time order, each with the event time decisions use.

        ``keep`` (at most ``max_held``) is how many may stay held: the oldest beyond it go now.
        """
        out = [(event, self.frontier) for event in sorted(self.late, key=_order)]
        self.late = []
        bound = math.inf if final else self.watermark
        excess = len(self) - min(self.max_held, self.max_held if keep is None else keep)
        if not self.strays and excess <= 0:  # the common case: the held events before the bound, in one slice
            ordered, start = self.ordered, self.start
            end = len(ordered) if final else bisect.bisect_left(ordered, bound, start, key=_event_time)
            if end > start:
                out += [(event, event.timestamp) for event in ordered[start:end]]
                self.frontier = max(self.frontier, ordered[end - 1].timestamp)
                self.start = end
        else:
            self._release_each(bound, excess, out)
        if self.start > 1024 and self.start * 2 > len(self.ordered):
            del self.ordered[: self.start]
            self.start = 0
        return out

    def _release_each(self, bound: float, excess: int, out: list[tuple[Event, float]]) -> None:
        """Release event by event, merging the strays in (the oldest ``excess`` go whatever ``bound`` says)."""
        while True:
            event = self._next(bound, force=excess > 0)
            if event is None:
                return
            if excess > 0 and event.timestamp >= bound:
                self.forced += 1
            excess -= 1
            out.append((event, event.timestamp))
            self.frontier = max(self.frontier, event.timestamp)

    def compact(self) -> None:
        """Forget the released events still referenced (before a checkpoint)."""
        del self.ordered[: self.start]
        self.start = 0

    def _next(self, bound: float, force: bool) -> Event | None:
        """Take the earliest held event if it is before ``bound`` (or ``force``); else None."""
        first = self.ordered[self.start] if self.start < len(self.ordered) else None
        stray = self.strays[0] if self.strays else None
        if first is None and stray is None:
            return None
        if stray is not None and (first is None or stray[:3] < _order(first)):
            if stray[0] >= bound and not force:
                return None
            popped = heapq.heappop(self.strays)
            self._stray_keys.discard(popped[:3])
            return popped[3]
        assert first is not None
        if first.timestamp >= bound and not force:
            return None
        self.start += 1
        return first
