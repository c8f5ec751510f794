"""Event-time order: any arrival order within the disorder bound releases the same sequence."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import decode, encode
from streams.event_time import EventTimeBuffer
from streams.events import OutcomeEvent, PredictionEvent


def _events(rng: random.Random, n: int) -> list[PredictionEvent | OutcomeEvent]:
    out: list[PredictionEvent | OutcomeEvent] = []
    t = 1000.0
    for i in range(n):
        t += rng.choice([0.0, 0.5, 1.0, 3.0])
        out.append(PredictionEvent("m", f"p{i}", {}, 1, None, "", t, None))
        if rng.random() < 0.5:
            out.append(OutcomeEvent("m", f"p{rng.randrange(i + 1)}", 1, t + rng.choice([0.0, 2.0, 7.0])))
    return out


def _order(e: PredictionEvent | OutcomeEvent) -> tuple[float, int, str]:
    return (e.timestamp, 0 if isinstance(e, PredictionEvent) else 1, e.prediction_id)


def _shuffle_within(events: list, bound: float, rng: random.Random) -> list:
    """An arrival order in which nothing arrives after a prediction more than ``bound`` newer than it."""
    pending = sorted(events, key=_order)
    arrived: list = []
    while pending:
        # the oldest pending event must come before any prediction more than ``bound`` newer than it
        limit = pending[0].timestamp + bound
        choices = [
            i for i, e in enumerate(pending[:40]) if not (isinstance(e, PredictionEvent) and e.timestamp > limit)
        ]
        arrived.append(pending.pop(rng.choice(choices)))
    return arrived


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(0, 120),
    bound=st.sampled_from([0.0, 2.0, 10.0]),
    release_every=st.integers(1, 30),
)
def test_any_order_within_the_bound_releases_event_time_order(
    seed: int, n: int, bound: float, release_every: int
) -> None:
    rng = random.Random(seed)
    events = _events(rng, n)
    buffer = EventTimeBuffer(max_disorder_s=bound)
    released = []
    for i, event in enumerate(_shuffle_within(events, bound, rng)):
        buffer.add(event)
        if i % release_every == 0:
            released += buffer.release()
    released += buffer.release(final=True)
    assert [e for e, _ in released] == sorted(events, key=_order)
    assert [t for _, t in released] == sorted(e.timestamp for e in events)
    assert buffer.late_events == 0 and len(buffer) == 0


def test_a_late_event_is_counted_and_released_at_the_frontier() -> None:
    buffer = EventTimeBuffer(max_disorder_s=5.0)
    for pid, ts in [("a", 100.0), ("b", 120.0)]:
        buffer.add(PredictionEvent("m", pid, {}, 1, None, "", ts, None))
    assert [e.prediction_id for e, _ in buffer.release()] == ["a"]
    buffer.add(PredictionEvent("m", "old", {}, 1, None, "", 50.0, None))
    assert buffer.late_events == 1
    out = buffer.release(final=True)
    assert [(e.prediction_id, t) for e, t in out] == [("old", 100.0), ("b", 120.0)]


def test_outcomes_never_move_the_watermark() -> None:
    buffer = EventTimeBuffer(max_disorder_s=5.0)
    buffer.add(PredictionEvent("m", "a", {}, 1, None, "", 100.0, None))
    buffer.add(OutcomeEvent("m", "a", 1, 10_000.0))  # a labelling clock far ahead
    assert buffer.release() == []  # the model's time is still 100: nothing is older than 95
    buffer.add(PredictionEvent("m", "b", {}, 1, None, "", 106.0, None))
    assert [e.prediction_id for e, _ in buffer.release()] == ["a"]


def test_too_many_held_events_are_released_oldest_first() -> None:
    buffer = EventTimeBuffer(max_disorder_s=1e9, max_held=100)
    for i in range(150):
        buffer.add(PredictionEvent("m", f"p{i}", {}, 1, None, "", float(i), None))
    out = buffer.release()
    assert [e.prediction_id for e, _ in out] == [f"p{i}" for i in range(50)] and buffer.forced == 50


def _release_one_by_one(buffer: EventTimeBuffer, final: bool, keep: int | None) -> list:
    """Release as the buffer did before its one-slice path: event by event, through the merge of strays."""
    out = [(event, buffer.frontier) for event in sorted(buffer.late, key=_order)]
    buffer.late = []
    bound = float("inf") if final else buffer.watermark
    excess = len(buffer) - min(buffer.max_held, buffer.max_held if keep is None else keep)
    buffer._release_each(bound, excess, out)  # noqa: SLF001 (the path the one-slice release must equal)
    return out


def _held(buffer: EventTimeBuffer) -> tuple:
    return (
        buffer.ordered[buffer.start :],
        sorted(buffer.strays),
        buffer.late,
        buffer.newest,
        buffer.frontier,
        buffer.forced,
        buffer.late_events,
    )


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(0, 80),
    bound=st.sampled_from([0.0, 2.0, 10.0]),
    steps=st.lists(st.tuples(st.integers(1, 20), st.booleans(), st.one_of(st.none(), st.integers(0, 30))), max_size=12),
)
def test_a_release_gives_the_events_and_state_of_releasing_them_one_by_one(
    seed: int, n: int, bound: float, steps: list[tuple[int, bool, int | None]]
) -> None:
    rng = random.Random(seed)
    events = _events(rng, n)
    rng.shuffle(events)  # any order: strays and late events too
    fast, slow = EventTimeBuffer(max_disorder_s=bound), EventTimeBuffer(max_disorder_s=bound)
    arrived = iter(events)
    for count, final, keep in [*steps, (len(events), True, None)]:
        for event in [e for _, e in zip(range(count), arrived, strict=False)]:
            fast.add(event)
            slow.add(event)
        assert fast.release(final, keep) == _release_one_by_one(slow, final, keep)
        assert _held(fast) == _held(slow)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from([100.0, 101.0]), st.integers(0, 3)), max_size=40),
    st.randoms(use_true_random=False),
    st.integers(1, 10),
)
def test_ids_sent_again_with_one_event_time_and_other_content_are_all_released_in_order(
    sends: list[tuple[str, float, int]], rng: random.Random, checkpoint_every: int
) -> None:
    events: list[PredictionEvent | OutcomeEvent] = [
        PredictionEvent("m", pid, {"x": x}, 1, None, "", ts, None) for pid, ts, x in sends
    ]
    events += [OutcomeEvent("m", pid, x, ts) for pid, ts, x in sends[::3]]
    rng.shuffle(events)
    buffer = EventTimeBuffer(max_disorder_s=0.5)
    released = []
    for i, event in enumerate(events):
        buffer.add(event)
        if i % checkpoint_every == 0:  # a checkpoint and a restore, mid-way
            buffer = decode(encode(buffer), EventTimeBuffer)
            released += buffer.release()
        assert buffer._stray_keys <= {s[:3] for s in buffer.strays}  # noqa: SLF001 (the keys go with their strays)
    released += buffer.release(final=True)
    assert sorted(map(encode, (e for e, _ in released))) == sorted(map(encode, events))  # each once
    times = [t for _, t in released]
    assert times == sorted(times)  # decisions never run backwards in event time
