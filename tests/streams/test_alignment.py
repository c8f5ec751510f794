"""The aligner takes fetched records in event-time order across partitions, waiting for a fetch only when it must."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.alignment import Aligner, Queued


def _queued(times: list[float], start: int = 0) -> list[Queued]:
    return [Queued(start + i, t, 0.0, (start + i, t)) for i, t in enumerate(times)]


def _taken(aligner: Aligner[str], now: float, unread: set[str]) -> list[tuple[str, list[float]]]:
    return [(tp, [q.time for q in run]) for tp, run in aligner.take(now, unread.__contains__)]


def test_live_traffic_does_not_wait_for_a_partition_with_unread_records() -> None:
    # Every partition's last event was a moment ago: what the broker still holds of b sorts with a's event.
    aligner: Aligner[str] = Aligner(max_idle_s=0.1, slack_s=5.0)
    aligner.add("a", _queued([100.0]))
    aligner.add("b", _queued([99.9]))
    assert _taken(aligner, 0.0, unread=set()) == [("b", [99.9]), ("a", [100.0])]
    aligner.add("a", _queued([100.1], start=1))
    assert _taken(aligner, 0.0, unread={"b"}) == [("a", [100.1])]


def test_a_partition_with_unread_records_ends_the_run_at_its_horizon() -> None:
    aligner: Aligner[str] = Aligner(max_idle_s=0.1, slack_s=5.0)
    aligner.add("b", _queued([10.0]))
    assert _taken(aligner, 0.0, unread=set()) == [("b", [10.0])]
    aligner.add("a", _queued([11.0, 14.0, 15.0, 16.0, 40.0]))
    # b's next events are 10 s or later: a may run up to 15, then waits for b's fetch
    assert _taken(aligner, 0.0, unread={"b"}) == [("a", [11.0, 14.0, 15.0])]
    assert _taken(aligner, 0.05, unread={"b"}) == []
    aligner.add("b", _queued([12.0, 30.0], start=1))
    assert _taken(aligner, 0.06, unread=set()) == [("b", [12.0]), ("a", [16.0]), ("b", [30.0])]
    assert _taken(aligner, 0.16, unread=set()) == [("a", [40.0])]  # b, heard of at 30, was waited for once


def test_a_partition_behind_holds_the_others_back_for_max_idle_then_no_longer() -> None:
    aligner: Aligner[str] = Aligner(max_idle_s=0.1, slack_s=5.0)
    aligner.add("b", _queued([10.0]))
    aligner.add("a", _queued([9.0]))
    assert _taken(aligner, 0.0, unread=set()) == [("a", [9.0]), ("b", [10.0])]
    aligner.add("a", _queued([60.0], start=1))
    assert _taken(aligner, 1.0, unread=set()) == []  # b was last heard of 50 s of event time before
    assert _taken(aligner, 1.05, unread=set()) == []
    assert _taken(aligner, 1.1, unread=set()) == [("a", [60.0])]
    aligner.add("a", _queued([70.0], start=2))
    assert _taken(aligner, 1.2, unread=set()) == [("a", [70.0])]  # an idle partition costs one wait


def test_partitions_never_heard_of_are_waited_for_together() -> None:
    aligner: Aligner[str] = Aligner(max_idle_s=0.1, slack_s=5.0)
    aligner.add("a", _queued([1.0]))
    for tp in ("b", "c", "d"):
        aligner.add(tp, [])
    assert _taken(aligner, 0.0, unread={"b", "c", "d"}) == []
    assert _taken(aligner, 0.1, unread={"b", "c", "d"}) == [("a", [1.0])]  # one wait for all three, not three


@st.composite
def _schedules(draw: st.DrawFn) -> tuple[dict[str, list[float]], list[tuple[str, int]], float]:
    """Partitions of time-ordered events, and the fetches that deliver them (partition, how many) in any order."""
    streams = {}
    for tp in "abcd"[: draw(st.integers(1, 4))]:
        steps = draw(st.lists(st.floats(0.0, 4.0, allow_nan=False), max_size=25))
        start = draw(st.floats(0.0, 30.0, allow_nan=False))
        streams[tp] = [start + s for s in itertools.accumulate(steps)]
    fetches = draw(st.lists(st.tuples(st.sampled_from(sorted(streams)), st.integers(1, 6)), max_size=60))
    return streams, fetches, draw(st.sampled_from([0.5, 2.0, 5.0]))


@settings(max_examples=300, deadline=None)
@given(_schedules())
def test_taken_in_order_up_to_the_slack_for_any_fetch_order(
    schedule: tuple[dict[str, list[float]], list[tuple[str, int]], float],
) -> None:
    # Partitions fetched in any order (the wait never runs out while they are): every event taken is at most
    # slack_s before one taken earlier, what the event-time buffer sorts; every one is taken once, in order.
    streams, fetches, slack = schedule
    aligner: Aligner[str] = Aligner(max_idle_s=1.0, slack_s=slack)
    delivered = dict.fromkeys(streams, 0)
    for tp in streams:
        aligner.add(tp, [])
    taken: list[tuple[str, float]] = []

    def take(now: float) -> None:
        unread = {tp for tp in streams if delivered[tp] < len(streams[tp])}
        taken.extend((tp, t) for tp, times in _taken(aligner, now, unread) for t in times)

    for tp, n in fetches:
        got = streams[tp][delivered[tp] : delivered[tp] + n]
        aligner.add(tp, _queued(got, start=delivered[tp]))
        delivered[tp] += len(got)
        take(0.0)
    for tp in streams:  # the rest arrives
        aligner.add(tp, _queued(streams[tp][delivered[tp] :], start=delivered[tp]))
        delivered[tp] = len(streams[tp])
    for k in range(1, 2 * len(streams) + 2):  # the clock runs past each wait: each starts when it first holds back
        take(10.0 * k)
    newest = -math.inf
    for _, t in taken:
        assert t >= newest - slack - 1e-9
        newest = max(newest, t)
    assert {tp: [t for p, t in taken if p == tp] for tp in streams} == streams
