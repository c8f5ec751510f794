"""Partition ownership against the real Redis: leases fence stale owners, offsets skip replays."""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio

from streams.embedded import EmbeddedRedis
from streams.partitions import CheckpointStore, PartitionOwner, PartitionState
from streams.keys import RedisKeys
from streams.settings import Settings


def _message(source_offsets: list[int], model: str = "m") -> bytes:
    events = [{"type": "prediction", "model_id": model, "prediction_id": f"p{o}-{k}", "features": {"x": 1.0},
               "prediction": 1, "score": None, "model_version": "", "timestamp": 1.0, "segment": None, "o": o}
              for k, o in enumerate(source_offsets)]
    return orjson.dumps({"src": "driftline.predictions/0", "events": events})


def test_replayed_messages_and_reingested_records_count_once() -> None:
    part = PartitionState(0, Settings())
    assert part.apply_message(0, _message([10, 10, 11]))
    assert part.apply_message(1, _message([12]))
    assert not part.apply_message(1, _message([12]))  # the same internal message again
    assert part.apply_message(2, _message([11, 12, 13]))  # the ingest re-sent 11 and 12 after a crash
    assert part.models["m"].predictions == 5 and part.next_offset == 3


def test_model_cap_counts_overflow() -> None:
    part = PartitionState(0, Settings(max_models_per_partition=1))
    part.apply_message(0, _message([1], model="a"))
    part.apply_message(1, _message([2], model="b"))
    assert list(part.models) == ["a"] and part.overflow_events == 1


class _Ack:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def test_a_stale_owner_cannot_overwrite_the_new_owners_checkpoint(redis_server: EmbeddedRedis, unique: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        store = CheckpointStore(client, RedisKeys(f"t{unique}:"), "group", "events")
        old, new = PartitionOwner(Settings(), store), PartitionOwner(Settings(), store)
        part_old = await old.get(3)
        part_old.apply_message(0, _message([1]))
        part_old.unacked.append(first := _Ack())
        assert await old.checkpoint() == 1 and first.acked

        part_new = await new.get(3)  # a rebalance: the partition moves
        assert part_new.next_offset == 1 and part_new.models["m"].predictions == 1
        part_old.apply_message(1, _message([2]))
        part_old.unacked.append(stale := _Ack())
        assert await old.checkpoint() == 0 and not stale.acked and 3 not in old.owned

        part_new.apply_message(1, _message([2]))
        part_new.unacked.append(_Ack())
        assert await new.checkpoint() == 1
        again = await PartitionOwner(Settings(), store).get(3)
        assert again.next_offset == 2 and again.models["m"].predictions == 2
        await client.aclose()

    asyncio.run(scenario())
