"""Consumption aligned by event time across the partitions a worker reads (Kafka Streams' KIP-353).

Fetched records wait in one queue per partition, decoded, each with the
earliest event time it holds. The worker always takes next from the partition
whose head is earliest in event time, so a catch-up never puts an hour of one
partition in front of another. A partition with nothing queued may still hold
earlier events. Its next events are taken to be no earlier than the last one
taken from it (a partition is written in about event-time order); the event-time
buffer behind the aligner sorts anything up to ``slack_s`` (half the disorder
bound) out of order. So an empty partition holds the others back from events
more than ``slack_s`` after its last one, up to ``max_idle_s``
(``max.task.idle.ms``), when

- the broker is known to hold records of it not fetched yet (its high
  watermark, as of the last fetch, is past its position): then it also ends
  every run at that point, so a run never takes a queue past it, or
- it has been heard from more than ``slack_s`` of event time ago (or never): in a
  backlog or a fast replay an empty queue means "not fetched yet" more often
  than "nothing there", and waiting one fetch tells which.

Live traffic thus never waits for a fetch: every partition's last event is a
moment ago. A partition that keeps holding the others back past ``max_idle_s``
stops doing so until it gets records again: an idle partition costs one wait.
A partition whose queue is full is not fetched again until it drains: one that
runs ahead in event time is thus paused until the others catch up.

>>> aligner = Aligner(max_idle_s=0.0, slack_s=5.0)
>>> aligner.add("a", [Queued(0, 50.0, 0.0, "a0"), Queued(1, 70.0, 0.0, "a1")])
>>> aligner.add("b", [Queued(0, 60.0, 0.0, "b0")])
>>> [(tp, [q.payload for q in run]) for tp, run in aligner.take(0.0, unread=lambda tp: False)]
[('a', ['a0']), ('b', ['b0']), ('a', ['a1'])]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Aligner", "Queued"]

TP = TypeVar("TP", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Queued:
    """One fetched message, decoded, waiting its turn: its offset, earliest event time and produce time."""

    offset: int
    time: float
    produced: float  # the Kafka record's timestamp
    payload: Any


class Aligner(Generic[TP]):
    """Per-partition queues, taken in event-time order."""

    def __init__(self, max_idle_s: float, slack_s: float, max_queued: int = 2000) -> None:
        self.max_idle_s = max_idle_s
        self.slack_s = slack_s
        self.max_queued = max_queued
        self.queues: dict[TP, deque[Queued]] = {}
        self.last: dict[TP, float] = {}  # the latest event time taken from each partition
        self.blocked_since: dict[TP, float] = {}  # when an empty partition began to hold the others back

    def add(self, tp: TP, items: Iterable[Queued]) -> None:
        self.queues.setdefault(tp, deque()).extend(items)

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def full(self) -> set[TP]:
        """Partitions not to fetch now: their queue is full."""
        return {tp for tp, q in self.queues.items() if len(q) >= self.max_queued}

    def drop(self, tps: Iterable[TP]) -> None:
        for tp in list(tps):
            self.queues.pop(tp, None)
            self.last.pop(tp, None)
            self.blocked_since.pop(tp, None)

    def take(
        self, now: float, unread: Callable[[TP], bool], assigned: Iterable[TP] = ()
    ) -> Iterator[tuple[TP, list[Queued]]]:
        """Runs of messages in event-time order, for as long as no empty partition may hold earlier ones.

        ``now`` is a monotonic clock, ``unread(tp)`` whether a partition has
        records not fetched yet; ``assigned`` lists partitions with no queue yet.
        """
        for tp in assigned:
            self.queues.setdefault(tp, deque())
        while True:
            heads = [(q[0].time, tp) for tp, q in self.queues.items() if q]
            if not heads:
                return
            heads.sort(key=lambda h: h[0])
            first, tp = heads[0]
            queue = self.queues[tp]
            limit = self._limit(first, now, unread)
            if limit is None:
                return
            bound = min(heads[1][0] if len(heads) > 1 else math.inf, limit)
            run = [queue.popleft()]
            while queue and queue[0].time <= bound:
                run.append(queue.popleft())
            self.last[tp] = max(self.last.get(tp, -math.inf), run[-1].time)
            yield tp, run

    def _limit(self, head: float, now: float, unread: Callable[[TP], bool]) -> float | None:
        """The latest event time a run may take now (``head`` at least), or None to wait for an empty partition."""
        limit, wait = math.inf, False
        for tp, queue in self.queues.items():
            if queue:
                self.blocked_since.pop(tp, None)
                continue
            horizon = self.last.get(tp, -math.inf) + self.slack_s  # its next events sort with ours up to here
            if head <= horizon:
                self.blocked_since.pop(tp, None)
                if unread(tp):
                    limit = min(limit, horizon)
                continue
            since = self.blocked_since.setdefault(tp, now)  # every one's wait starts now, not one after another
            wait = wait or now - since < self.max_idle_s
        return None if wait else limit
