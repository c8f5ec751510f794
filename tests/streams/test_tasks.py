"""Tasks against the real Redis: every event applied once, leases fence stale owners, saves land together."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams import codec
from streams.codec import encode
from streams.embedded import EmbeddedRedis
from streams.events import Invalid, OutcomeEvent, PredictionEvent
from streams.join import LabelJoin
from streams.keys import RedisKeys
from streams.routing import Forwarded
from streams.settings import Settings
from streams.state import ModelState
from streams.tasks import CheckpointStore, TaskMeta, TaskState

SOURCE = "driftline.predictions/0"


def _apply(task: TaskState, origins: list[tuple[int, int]], model: str = "m") -> None:
    for offset, index in origins:
        if not task.seen(SOURCE, offset, index):
            task.arrive(PredictionEvent(model, f"p{offset}-{index}", {"x": 1.0}, 1, None, "", 1.0 + offset, None))


async def _owner(store: CheckpointStore, settings: Settings, partition: int = 0) -> TaskState:
    """A new owner of a partition: its lease taken, its checkpoint restored."""
    task = TaskState(partition, settings)
    task.lease, meta, blobs, joins = await store.acquire(partition)
    task.restore(meta, blobs, joins)
    return task


def test_re_read_and_re_forwarded_events_count_once() -> None:
    task = TaskState(0, Settings())
    _apply(task, [(10, 0), (10, 1), (11, 0)])
    _apply(task, [(11, 0), (12, 0)])  # re-read after a crash: 11 again
    _apply(task, [(10, 1), (12, 0), (13, 0)])  # forwarded again by a restarted worker
    assert task.models["m"].predictions == 5
    task.arrive(Invalid("m"))
    assert task.models["m"].invalid == 1


def test_runs_of_re_read_events_count_once() -> None:
    def run(origins: list[tuple[int, int]]) -> list[Forwarded]:
        return [
            Forwarded(o, i, PredictionEvent("m", f"p{o}-{i}", {"x": 1.0}, 1, None, "", 1.0 + o, None))
            for o, i in origins
        ]

    task = TaskState(0, Settings())
    task.arrive_new(SOURCE, run([(10, 0), (10, 1), (11, 0)]))
    task.arrive_new(SOURCE, run([(10, 1), (11, 0)]))  # all applied already
    task.arrive_new(SOURCE, run([(11, 0), (12, 0), (12, 1)]))  # re-read after a crash, then new ones
    task.arrive_new(SOURCE, run([(12, 1), (13, 0)]))
    assert task.models["m"].predictions == 6 and task.meta.watermarks[SOURCE] == (13, 0)
    task.arrive_new(SOURCE, [Forwarded(14, 0, Invalid("m")), Forwarded(14, 1, Invalid("new"))])
    assert (task.models["m"].invalid, task.models["new"].invalid) == (1, 1)


def test_the_model_cap_counts_overflow() -> None:
    task = TaskState(0, Settings(max_models_per_partition=1))
    _apply(task, [(1, 0)], model="a")
    _apply(task, [(2, 0)], model="b")
    assert list(task.models) == ["a"] and task.meta.overflow_events == 1


def test_leases_fence_a_stale_owner_and_saves_land_together(redis_server: EmbeddedRedis, unique: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{unique}:"), "group", "events")

        async def load(partition: int) -> TaskState:
            return await _owner(store, Settings(), partition)

        old = [await load(3), await load(4)]
        _apply(old[0], [(1, 0)])
        _apply(old[1], [(1, 1)], model="n")
        assert await store.save(old) == set()

        new3 = await load(3)  # a rebalance: partition 3 moves; its state comes along
        assert new3.models["m"].predictions == 1 and new3.meta.watermarks == {SOURCE: (1, 0)}
        _apply(old[0], [(2, 0)])
        _apply(old[1], [(2, 1)], model="n")
        assert await store.save(old) == {3}  # one lease lost: nothing of this save lands, not even partition 4's
        assert (await load(4)).models["n"].predictions == 1

        _apply(new3, [(2, 0)])
        assert await store.save([new3]) == set()
        again = await load(3)
        assert again.models["m"].predictions == 2
        await client.aclose()

    asyncio.run(scenario())


def test_only_changed_models_are_written_again(redis_server: EmbeddedRedis, unique: str) -> None:
    async def scenario() -> list[bytes]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{unique}:"), "group", "events")
        task = TaskState(0, Settings())
        task.lease, *_ = await store.acquire(0)
        _apply(task, [(1, 0)], model="a")
        _apply(task, [(2, 0)], model="b")
        assert len(task.snapshot().blobs) == 2
        await store.save([task])
        _apply(task, [(3, 0)], model="b")
        changed = list(task.snapshot().blobs)
        await store.save([task])
        await client.aclose()
        return [m.encode() for m in changed]

    assert asyncio.run(scenario()) == [b"b"]


def test_a_partitions_bounds_cap_features_waiting_predictions_and_held_events() -> None:
    settings = Settings(
        max_features_per_partition=5,
        max_pending_per_partition=100,
        max_held_per_partition=50,
        model_probation_events=1,
        max_disorder_s=1e9,
    )
    task = TaskState(0, settings)
    for m in range(3):  # three models of three features: the partition monitors five of the nine
        for i in range(60):
            task.arrive(PredictionEvent(f"m{m}", f"p{i}", {"a": 1.0, "b": 2.0, "c": "x"}, 1, None, "", float(i), None))
    assert sum(len(s.buffer) for s in task.models.values()) == 180
    task.release(False)  # the watermark passed nothing, but 180 held is over the bound of 50
    assert sum(len(s.buffer) for s in task.models.values()) <= 50
    assert sum(s.monitored_features() for s in task.models.values()) == 5
    assert sum(s.monitor.overflow_feature_values for s in task.models.values() if s.monitor) > 0
    assert sum(len(s.join.pending) for s in task.models.values()) <= 100
    assert all(s.join.expired == 0 or s.join.expired + len(s.join.pending) <= 60 for s in task.models.values())


def test_a_release_past_its_deadline_leaves_due_models_for_the_next_unless_they_waited_twice() -> None:
    task = TaskState(0, Settings(decision_interval_s=0.5, max_disorder_s=0.0))
    _apply_at(task, [1.0, 2.0])
    assert task.release(False, now=10.0, until=-1.0) == 2  # never released: overdue, so past the deadline too
    _apply_at(task, [3.0])  # 2.0 is ready now
    assert task.release(False, now=10.2) == 0  # not due for another 0.3 s
    assert task.release(False, now=10.6, until=-1.0) == 0  # due, but the call is past its deadline
    assert task.release(False, now=10.6) == 2  # due, before the deadline
    _apply_at(task, [4.0])
    assert task.release(False, now=11.7, until=-1.0) == 2  # waited over twice the interval: released anyway


def _apply_at(task: TaskState, times: list[float]) -> None:
    for model in ("a", "b"):
        for ts in times:
            task.arrive(PredictionEvent(model, f"{model}{ts}", {"x": 1.0}, 1, None, "", ts, None))


_JOIN_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["prediction", "outcome"]), st.integers(0, 12), st.floats(0.0, 3.0)),
        st.tuples(st.sampled_from(["save", "restore"]), st.just(0), st.just(0.0)),
    ),
    max_size=150,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_JOIN_STEPS)
@example(  # ids saved as recently joined, then trimmed in a save that goes entry by entry: gone from Redis too
    steps=[("prediction", i, 0.1) for i in range(20, 30)]
    + [(kind, i, 0.1) for i in range(4) for kind in ("prediction", "outcome")]
    + [("save", 0, 0.0)]
    + [(kind, i, 0.1) for i in range(4, 6) for kind in ("prediction", "outcome")]
    + [("restore", 0, 0.0)]
)
def test_join_stores_saved_as_they_change_restore_every_entry_in_order(
    redis_server: EmbeddedRedis, steps: list[tuple[str, int, float]]
) -> None:
    # A join's stores go to Redis as they change, apart from the model's blob. Through any saves and restores
    # (a new owner each time), the join decides as one never saved, and a restored one holds its stores
    # exactly: every entry, in order. Small bounds make every way out happen: joins, duplicates, re-delivered
    # predictions, expiry, eviction and the trimming of the ids recently joined.
    bounds = Settings(lateness_budget_s=20.0, outcome_grace_s=10.0, max_pending_predictions=12, max_pending_outcomes=6)

    def fresh(task: TaskState) -> ModelState:
        state = task.model("m")
        assert state is not None
        state.join.max_recently_joined = 5
        return state

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{uuid.uuid4().hex[:10]}:"), "group", "events")
        task = await _owner(store, bounds)
        state, reference = fresh(task), LabelJoin(20.0, 10.0, 12, 6, max_recently_joined=5)
        clock = 0.0
        for kind, pid, dt in steps:
            clock += dt
            if kind == "prediction":
                event = PredictionEvent("m", f"p{pid}", {}, 1, 0.5, "", clock, None)
                assert state.join.add_prediction(event, clock) == reference.add_prediction(event, clock)
            elif kind == "outcome":
                outcome = OutcomeEvent("m", f"p{pid}", 1, clock)
                assert state.join.add_outcome(outcome, clock) == reference.add_outcome(outcome, clock)
            state.changed = True
            if kind in ("save", "restore"):
                assert await store.save([task]) == set()
            if kind == "restore":
                restored = await _owner(store, bounds)
                assert encode(restored.models["m"]) == encode(state)
                task, state = restored, restored.models["m"]
        join = state.join
        assert join.stores() == reference.stores()
        assert [list(s) for s in join.stores()] == [list(s) for s in reference.stores()]
        counts = ("joined", "expired", "unmatched_outcomes", "duplicate_outcomes", "clock")
        assert [getattr(join, c) for c in counts] == [getattr(reference, c) for c in counts]
        await client.aclose()

    asyncio.run(scenario())


def test_a_checkpoint_of_format_3_is_read_and_saved_again_as_format_4(redis_server: EmbeddedRedis, unique: str) -> None:
    # Format 3 kept a model's join stores inside its blob: a worker of format 4 takes them from there, then
    # saves them apart, and the next owner gets every waiting prediction back, in order.
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{unique}:"), "group", "events")
        old = TaskState(0, Settings())
        _apply(old, [(k, 0) for k in range(5)])
        old.release(final=True)  # five predictions wait for their labels
        old.meta.format, old.meta.models = 3, ["m"]
        lease = await client.incr(store.key(0, "lease"))
        await client.set(store.key(0, "meta"), codec.encode(old.meta))
        await client.hset(store.key(0, "models"), "m", codec.encode(old.models["m"]))  # stores inside
        assert not await client.exists(store.key(0, "join:m"))
        task = await _owner(store, Settings())
        assert task.lease == lease + 1
        assert list(task.models["m"].join.pending) == [f"p{k}-0" for k in range(5)]
        task.models["m"].changed = True
        assert await store.save([task]) == set()
        again = await _owner(store, Settings())
        meta = await client.get(store.key(0, "meta"))
        assert codec.decode(meta, TaskMeta).format == 4
        assert await client.hkeys(store.key(0, "join:m")) == [b"*"]  # saved whole, once
        assert list(again.models["m"].join.pending) == [f"p{k}-0" for k in range(5)]
        await client.aclose()

    asyncio.run(scenario())


def test_a_save_of_thousands_of_join_entries_lands_whole(redis_server: EmbeddedRedis, unique: str) -> None:
    # The save script writes a hash's fields 500 at a time: a save of 1,002 changes to stores of 1,201 entries
    # goes entry by entry, across the chunks' edges.
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{unique}:"), "group", "events")
        task = await _owner(store, Settings())
        state = task.model("m")
        assert state is not None
        for i in range(1201):
            state.join.add_prediction(PredictionEvent("m", f"p{i}", {}, 1, 0.5, "", float(i), None), float(i))
        assert await store.save([task]) == set()
        for i in range(0, 1002, 2):  # 501 labels: as many predictions gone, and ids recently joined
            state.join.add_outcome(OutcomeEvent("m", f"p{i}", 1, 2000.0), 2000.0)
        state.changed = True
        assert await store.save([task]) == set()
        assert await client.hlen(store.key(0, "join:m")) == 1 + 1002
        restored = await _owner(store, Settings())
        assert encode(restored.models["m"]) == encode(state)
        assert list(restored.models["m"].join.pending) == [f"p{i}" for i in [*range(1, 1002, 2), *range(1002, 1201)]]
        await client.aclose()

    asyncio.run(scenario())
