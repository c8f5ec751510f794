"""LabelJoin: outcomes meet predictions in either order, bounded in memory, exact in its counts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import OutcomeEvent, PredictionEvent
from streams.join import JoinedPair, LabelJoin

HOUR = 3600.0


def pred(pid: str, ts: float, prediction: object = 1, score: float | None = 0.9) -> PredictionEvent:
    return PredictionEvent("m", pid, {"x": 1.0}, prediction, score, "v1", ts, None)  # type: ignore[arg-type]


def out(pid: str, ts: float, label: object = 1) -> OutcomeEvent:
    return OutcomeEvent("m", pid, label, ts)  # type: ignore[arg-type]


def counts(join: LabelJoin) -> dict[str, int]:
    return {
        "joined": join.joined,
        "expired": join.expired,
        "unmatched": join.unmatched_outcomes,
        "duplicates": join.duplicate_outcomes,
        "pending": len(join.pending),
        "early": len(join.early),
    }


def test_prediction_then_outcome() -> None:
    join = LabelJoin()
    assert join.add_prediction(pred("p1", 100.0, prediction="spam", score=0.7)) == []
    assert join.add_outcome(out("p1", 160.0, label="ham")) == [
        JoinedPair("p1", "spam", 0.7, "ham", 160.0)
    ]  # when it met
    assert counts(join) == dict(joined=1, expired=0, unmatched=0, duplicates=0, pending=0, early=0)


def test_outcome_before_prediction_joins() -> None:
    join = LabelJoin()
    assert join.add_outcome(out("p1", 10.0, label=0)) == []
    assert counts(join)["early"] == 1
    (pair,) = join.add_prediction(pred("p1", 9.0))
    assert (pair.prediction_id, pair.label, pair.timestamp) == ("p1", 0, 9.0)  # the event time of the later half
    assert counts(join) == dict(joined=1, expired=0, unmatched=0, duplicates=0, pending=0, early=0)


def test_an_outcome_long_after_within_the_lateness_budget_joins() -> None:
    join = LabelJoin()
    join.add_prediction(pred("p1", 0.0))
    for i in range(1, 23):  # other traffic moves event time forward, hour by hour
        join.add_prediction(pred(f"other-{i}", i * HOUR))
    assert len(join.add_outcome(out("p1", 24 * HOUR - 1))) == 1
    assert join.expired == 0


def test_a_prediction_past_the_lateness_budget_expires() -> None:
    join = LabelJoin(lateness_budget_s=24 * HOUR)
    join.add_prediction(pred("p1", 0.0))
    join.add_prediction(pred("p2", 24 * HOUR + 1))  # event time passes p1's budget
    assert join.expired == 1
    assert list(join.pending) == ["p2"]
    assert join.add_outcome(out("p1", 24 * HOUR + 2)) == []  # too late: waits as an early outcome
    assert counts(join)["early"] == 1
    join.add_prediction(pred("p3", 24 * HOUR + 2 + join.outcome_grace_s + 1))
    assert join.unmatched_outcomes == 1  # and is counted, never silently dropped


def test_an_early_outcome_past_its_grace_is_unmatched() -> None:
    join = LabelJoin(outcome_grace_s=600.0)
    join.add_outcome(out("p1", 1000.0))  # before any prediction: it starts waiting at the first one
    join.add_prediction(pred("x", 1000.0))
    join.add_prediction(pred("y", 1500.0))
    join.add_outcome(out("p2", 1500.0))  # arrives at prediction time 1500
    join.add_prediction(pred("z", 1600.0))  # p1 has waited exactly 600 s: still in grace
    assert join.unmatched_outcomes == 0
    join.add_prediction(pred("w", 1601.0))  # p1 is past its grace, p2 is not
    assert join.unmatched_outcomes == 1
    assert list(join.early) == ["p2"]
    assert join.add_prediction(pred("p1", 1602.0)) == []  # its outcome is gone: the prediction waits
    assert len(join.add_prediction(pred("p2", 1602.0))) == 1


def test_outcome_timestamps_from_another_clock_expire_nothing() -> None:
    """Predictions stamped by the producer, outcomes by the broker (years apart): all still join."""
    join = LabelJoin()
    for i in range(100):
        join.add_prediction(pred(f"p{i}", 1_600_000_000.0 + i))
    pairs = [p for i in range(100) for p in join.add_outcome(out(f"p{i}", 1_800_000_000.0 + i))]
    assert len(pairs) == 100 and join.expired == 0


def test_grace_is_event_time_not_arrival_order() -> None:
    join = LabelJoin(outcome_grace_s=600.0)
    join.add_outcome(out("p1", 1000.0))
    for i in range(1000):  # many arrivals, but event time never passes the grace
        join.add_prediction(pred(f"q{i}", 1000.0 + i * 0.5))
    assert len(join.add_prediction(pred("p1", 1500.0))) == 1
    assert join.unmatched_outcomes == 0


@pytest.mark.parametrize("order", ["prediction-first", "outcome-first", "outcomes-around"])
def test_duplicate_outcomes_count_once(order: str) -> None:
    join = LabelJoin()
    steps = {
        "prediction-first": [pred("p1", 1.0), out("p1", 2.0), out("p1", 3.0), out("p1", 4.0)],
        "outcome-first": [out("p1", 1.0), out("p1", 2.0), pred("p1", 3.0), out("p1", 4.0)],
        "outcomes-around": [out("p1", 1.0), pred("p1", 2.0), out("p1", 3.0)],
    }[order]
    pairs = []
    for step in steps:
        pairs += join.add_prediction(step) if isinstance(step, PredictionEvent) else join.add_outcome(step)
    assert len(pairs) == 1 and join.joined == 1
    assert join.duplicate_outcomes == sum(isinstance(s, OutcomeEvent) for s in steps) - 1
    assert counts(join)["pending"] == counts(join)["early"] == 0


def test_the_first_early_outcome_wins_over_a_duplicate() -> None:
    join = LabelJoin()
    join.add_outcome(out("p1", 1.0, label="first"))
    join.add_outcome(out("p1", 2.0, label="second"))
    assert join.add_prediction(pred("p1", 3.0))[0].label == "first"


def test_a_redelivered_prediction_does_not_join_twice() -> None:
    join = LabelJoin()
    join.add_prediction(pred("p1", 1.0))
    join.add_outcome(out("p1", 2.0))
    join.add_prediction(pred("p1", 1.0))  # the producer retried
    join.add_outcome(out("p1", 3.0))  # so did the labeller
    assert (join.joined, join.duplicate_outcomes) == (1, 1)
    assert len(join.pending) == 0


def test_pending_predictions_are_bounded_and_evicted_oldest_first() -> None:
    join = LabelJoin(max_pending_predictions=3)
    for i in range(5):
        join.add_prediction(pred(f"p{i}", float(i)))
    assert join.expired == 2
    assert list(join.pending) == ["p2", "p3", "p4"]
    assert join.add_outcome(out("p0", 6.0)) == []  # its prediction was evicted
    assert counts(join)["early"] == 1
    assert len(join.add_outcome(out("p3", 6.0))) == 1


def test_early_outcomes_are_bounded_and_evicted_oldest_first() -> None:
    join = LabelJoin(max_pending_outcomes=2)
    for i in range(4):
        join.add_outcome(out(f"p{i}", float(i)))
    assert join.unmatched_outcomes == 2
    assert list(join.early) == ["p2", "p3"]
    assert join.add_prediction(pred("p0", 5.0)) == []
    assert len(join.add_prediction(pred("p3", 5.0))) == 1


def test_old_events_do_not_move_event_time_back_and_still_expire() -> None:
    join = LabelJoin(lateness_budget_s=100.0)
    join.add_prediction(pred("late", 1000.0))
    join.add_prediction(pred("older", 10.0))  # arrives out of order
    assert join.clock == 1000.0
    join.add_prediction(pred("next", 1101.0))
    assert join.expired == 2  # both are past the budget by now: nothing waits forever
    assert list(join.pending) == ["next"]


def test_counts_invariant_with_unique_ids() -> None:
    rng = random.Random(4)
    join = LabelJoin(lateness_budget_s=50.0, outcome_grace_s=20.0, max_pending_predictions=40, max_pending_outcomes=15)
    predictions = 0
    for i in range(3000):
        ts = i * 0.1 + rng.uniform(-5, 5)
        if rng.random() < 0.5:
            join.add_prediction(pred(f"p{i}", ts))
            predictions += 1
        elif rng.random() < 0.9:
            join.add_outcome(out(f"p{i - rng.randint(-30, 200)}", ts))
        assert join.joined + len(join.pending) + join.expired == predictions
    assert join.expired > 0 and join.unmatched_outcomes > 0 and join.joined > 0


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_counts_add_up_with_unique_ids(data: st.DataObject) -> None:
    with_outcome = data.draw(st.lists(st.booleans(), min_size=1, max_size=50))
    n = len(with_outcome)
    times = data.draw(st.lists(st.integers(0, 1000), min_size=2 * n, max_size=2 * n))
    events: list[PredictionEvent | OutcomeEvent] = []
    for i in range(n):
        events.append(pred(f"p{i}", float(times[2 * i])))
        if with_outcome[i]:
            events.append(out(f"p{i}", float(times[2 * i + 1])))
    events = data.draw(st.permutations(events))
    join = LabelJoin(
        lateness_budget_s=data.draw(st.integers(1, 2000)),
        outcome_grace_s=data.draw(st.integers(1, 2000)),
        max_pending_predictions=data.draw(st.integers(1, 50)),
        max_pending_outcomes=data.draw(st.integers(1, 50)),
    )
    predictions = outcomes = 0
    for event in events:
        if isinstance(event, PredictionEvent):
            join.add_prediction(event)
            predictions += 1
        else:
            join.add_outcome(event)
            outcomes += 1
        assert join.joined + len(join.pending) + join.expired == predictions
        assert join.joined + len(join.early) + join.unmatched_outcomes == outcomes
        assert join.duplicate_outcomes == 0
        assert len(join.pending) <= join.max_pending_predictions
        assert len(join.early) <= join.max_pending_outcomes


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_interleavings_join_every_prediction_that_has_an_outcome(data: st.DataObject) -> None:
    copies = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=50))  # 0: no outcome, >1: duplicates
    n = len(copies)
    times = iter(data.draw(st.lists(st.integers(0, 10_000), min_size=n + sum(copies), max_size=n + sum(copies))))
    events: list[PredictionEvent | OutcomeEvent] = []
    for i in range(n):
        events.append(pred(f"p{i}", float(next(times))))
        events += [out(f"p{i}", float(next(times))) for _ in range(copies[i])]
    events = data.draw(st.permutations(events))
    join = LabelJoin(lateness_budget_s=1e9, outcome_grace_s=1e9)
    joined_ids = []
    for event in events:
        pairs = join.add_prediction(event) if isinstance(event, PredictionEvent) else join.add_outcome(event)
        joined_ids += [p.prediction_id for p in pairs]
    expected = {f"p{i}" for i in range(n) if copies[i] > 0}
    assert join.joined == len(expected)
    assert sorted(joined_ids) == sorted(expected)  # each exactly once
    assert join.duplicate_outcomes == sum(copies) - len(expected)
    assert (join.expired, join.unmatched_outcomes) == (0, 0)
    assert set(join.pending) == {f"p{i}" for i in range(n) if copies[i] == 0}
    assert not join.early


def test_an_outcome_waits_on_prediction_time_for_a_prediction_in_a_lagging_partition() -> None:
    """The outcome came first (its prediction sat in a partition read late): prediction time, not arrivals, decides."""
    join = LabelJoin(outcome_grace_s=600.0)
    join.add_prediction(pred("other", 1000.0))
    join.add_outcome(out("p1", 1010.0))  # its own time: 1010
    for i in range(5000):  # a flood of outcomes of other models' clocks moves nothing
        join.add_outcome(out(f"x{i}", 99_999.0))
    join.add_prediction(pred("q", 1609.0))
    assert join.unmatched_outcomes == 0
    assert len(join.add_prediction(pred("p1", 1005.0), at=1609.0)) == 1  # released late, at the frontier


def test_the_ids_kept_for_duplicates_are_the_newest_and_bounded() -> None:
    join = LabelJoin(max_recently_joined=16)
    for i in range(100):
        join.add_prediction(pred(f"p{i}", float(i)))
        join.add_outcome(out(f"p{i}", float(i)))
        assert 16 <= len(join.recently_joined) <= 18 or i < 16
    assert list(join.recently_joined)[-16:] == [f"p{i}" for i in range(84, 100)]
    join.add_outcome(out("p84", 101.0))  # the oldest of the newest 16: still recognised
    assert (join.duplicate_outcomes, len(join.early)) == (1, 0)


class _NeverCompacted(LabelJoin):
    def _deleted(self, count: int = 1) -> None:
        pass


class _CompactedOften(LabelJoin):
    def _deleted(self, count: int = 1) -> None:
        self._compact()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_compacting_the_stores_changes_no_decision(data: st.DataObject) -> None:
    """The stores are rebuilt (in order) after many deletions, so finding the oldest entry stays cheap: with
    any events, caps and redeliveries, every pair, count and stored entry is that of stores never rebuilt."""
    from streams.codec import encode

    caps = {
        "max_pending_predictions": data.draw(st.sampled_from([5, 50, 5000])),
        "max_pending_outcomes": data.draw(st.sampled_from([5, 50, 5000])),
        "lateness_budget_s": data.draw(st.sampled_from([3.0, 30.0, HOUR])),
        "outcome_grace_s": data.draw(st.sampled_from([2.0, 20.0])),
    }
    ops = data.draw(
        st.lists(
            st.tuples(st.sampled_from("pox"), st.integers(0, 300), st.floats(0.0, 2.0)), min_size=200, max_size=3000
        )
    )
    joins = [_CompactedOften(**caps), _NeverCompacted(**caps)]
    outputs: list[list] = [[], []]
    clock = 0.0
    for kind, pid, step in ops:
        clock += step
        for k, join in enumerate(joins):
            if kind == "p":
                outputs[k] += join.add_prediction(pred(f"p{pid}", clock - step / 2), at=clock)
            elif kind == "o":
                outputs[k] += join.add_outcome(out(f"p{pid}", clock), at=clock)
            else:
                outputs[k].append(join.evict_oldest(pid % 4))
    assert outputs[0] == outputs[1]
    assert encode(joins[0]) == encode(joins[1])
