"""Tasks: each worker's share of models, one task per partition number, restored from and saved to checkpoints.

Task ``k`` owns the models whose ``model_id`` hashes to partition ``k``
(:func:`streams.routing.partition_for`). It reads partition ``k`` of the
internal events topic (events other tasks forwarded to it) and, when the input
topics have as many partitions and partition ``k`` of them is assigned to the
same worker (Faust's co-partitioning assignor does that), partition ``k`` of
the input topics too: well-keyed events take one hop, as in Kafka Streams.

A task's checkpoint is its models, the next offset of its events partition,
and per-source watermarks: for each input partition (``topic/partition``), the
last (offset, index in the message) of an event applied to the task, whether
it was read on this worker or forwarded by another. Every event is applied
once: a re-read or re-forwarded one is recognised by its watermark.

A worker saves all its tasks in one atomic step, fenced by a lease per task:
whoever loaded a task last holds its lease, and a save with an older lease
writes nothing. (Events one of the worker's tasks read for another of its
tasks are applied there directly, so their checkpoints must land together.)
Only the models that changed since the last save are written again, and a
model's join stores (predictions waiting for labels, early outcomes, ids recently
joined: the bulk of a model whose labels come late) are saved apart, entry by entry
as they change (:mod:`streams.join_store`). All of a
consumer group's checkpoints share one Redis Cluster hash slot. Kafka offsets
are committed only after the save, so after any crash the owner restores the
checkpoint and skips what it had already applied: every count stays exact.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from detectors.monitor_config import FeatureBudget
from streams import codec, join_store
from streams.errors import CheckpointError
from streams.events import Invalid, OutcomeEvent, PredictionEvent
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient
from streams.routing import Forwarded
from streams.settings import Settings
from streams.state import ModelState

if TYPE_CHECKING:
    from streams.model_config import ModelConfig

log = logging.getLogger(__name__)

FORMAT = 4  # 4: a model's join stores in a hash of their own, written as they change; 3: inside its blob
READABLE = (3, 4)

# Per task, KEYS: lease, meta, models, the join stores of each model in ARGV's joins, then of each dropped model.
# ARGV: lease, meta, n changed, (id, blob) x n, n dropped, ids, n joins, then per join: 1 to clear its hash first
# (else 0), n, (field, value) x n (streams.join_store). Every lease is checked first; then all tasks are
# written, or none (HSET and HDEL take up to 500 fields a call). Returns the tasks whose lease is lost.
_FENCED_SAVE = """
local function skip(a)
  a = a + 3 + 2 * tonumber(ARGV[a + 2])
  local dropped = tonumber(ARGV[a])
  a = a + 1 + dropped
  local joins = tonumber(ARGV[a])
  a = a + 1
  for j = 1, joins do a = a + 2 + 2 * tonumber(ARGV[a + 1]) end
  return a, joins, dropped
end
local function each(command, key, from, count, width)
  local i, last = from, from + count * width - 1
  while i <= last do
    local j = math.min(i + 500 * width - 1, last)
    redis.call(command, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
local lost = {}
local a, k, t = 1, 1, 0
while a <= #ARGV do
  if redis.call('GET', KEYS[k]) ~= ARGV[a] then lost[#lost + 1] = t end
  local joins, dropped
  a, joins, dropped = skip(a)
  k, t = k + 3 + joins + dropped, t + 1
end
if #lost > 0 then return lost end
a, k = 1, 1
while a <= #ARGV do
  redis.call('SET', KEYS[k + 1], ARGV[a + 1])
  local changed = tonumber(ARGV[a + 2])
  each('HSET', KEYS[k + 2], a + 3, changed, 2)
  a = a + 3 + 2 * changed
  local dropped = tonumber(ARGV[a])
  each('HDEL', KEYS[k + 2], a + 1, dropped, 1)
  a = a + 1 + dropped
  local joins = tonumber(ARGV[a])
  a = a + 1
  for j = 1, joins do
    local key, n = KEYS[k + 2 + j], tonumber(ARGV[a + 1])
    if ARGV[a] == '1' then redis.call('DEL', key) end
    each('HSET', key, a + 2, n, 2)
    a = a + 2 + 2 * n
  end
  for i = 1, dropped do redis.call('DEL', KEYS[k + 2 + joins + i]) end
  k = k + 3 + joins + dropped
end
return lost
"""


@dataclass
class TaskMeta:
    """What a checkpoint says besides the models: how far into each stream they reflect."""

    format: int = FORMAT
    offsets: dict[str, int] = field(default_factory=dict)  # topic -> next offset of partition k to apply
    watermarks: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> last forwarded (offset, index)
    overflow_events: int = 0
    models: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """One task's share of a save: its meta, the blobs of its changed models, the models it dropped, and per
    model what it writes of its join stores (:mod:`streams.join_store`)."""

    meta: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    joins: dict[str, join_store.StoreChanges] = field(default_factory=dict)


@dataclass
class TaskState:
    """The models of one task and how far into its streams they reflect."""

    partition: int
    settings: Settings
    models: dict[str, ModelState] = field(default_factory=dict)
    meta: TaskMeta = field(default_factory=TaskMeta)
    lease: int = 0
    configs: dict[str, ModelConfig] = field(default_factory=dict)  # shared with the owner
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # shared with the owner
    saved_models: set[str] = field(default_factory=set)  # models whose blob is in Redis

    def __post_init__(self) -> None:
        self.budget = FeatureBudget(self.settings.max_features_per_partition)
        self.released_at: dict[str, float] = {}  # when each model was last released (monotonic; not checkpointed)

    def model(self, model_id: str) -> ModelState | None:
        """The model's state, created on its first event; None beyond the partition's cap."""
        state = self.models.get(model_id)
        if state is None:
            if len(self.models) >= self.settings.max_models_per_partition:
                return None
            state = self.models[model_id] = ModelState.create(model_id, self.settings, self.configs.get(model_id))
        return state

    def next_offset(self, topic: str) -> int:
        return self.meta.offsets.get(topic, 0)

    def applied(self, topic: str, offset: int) -> None:
        self.meta.offsets[topic] = offset + 1

    def arrive(self, event: PredictionEvent | OutcomeEvent | Invalid) -> None:
        """Apply one valid event (or count an invalid one) of a model this task owns."""
        state = self.model(event.model_id)
        if state is None:
            self.meta.overflow_events += 1
        elif isinstance(event, Invalid):
            state.count_invalid()
        else:
            state.arrive(event)

    def arrive_new(self, source: str, items: list[Forwarded]) -> None:
        """Apply the events of ``items`` (one source's, in source order) not applied before: :meth:`seen` for a run."""
        applied = self.meta.watermarks.get(source)
        start = 0
        if applied is not None:
            mark = tuple(applied)
            while start < len(items) and (items[start].offset, items[start].index) <= mark:
                start += 1
        if start == len(items):
            return
        self.meta.watermarks[source] = (items[-1].offset, items[-1].index)
        models = self.models
        for item in items[start:] if start else items:
            event = item.event
            state = models.get(event.model_id)
            if state is None or isinstance(event, Invalid):
                self.arrive(event)  # a new model, over the cap, or an invalid event
            else:
                state.arrive(event)

    def seen(self, source: str, offset: int, index: int) -> bool:
        """Whether an event forwarded from ``source`` was applied already; record it if not."""
        origin = (offset, index)
        applied = self.meta.watermarks.get(source)
        if applied is not None and origin <= tuple(applied):
            return True
        self.meta.watermarks[source] = origin
        return False

    def release(self, final: bool, now: float | None = None, until: float = math.inf) -> int:
        """Release the models' events the watermark passed; return how many. Keeps the partition's bounds.

        A model is released at most every ``decision_interval_s`` (``now``: a
        monotonic clock), unless ``final`` or over its share of the bound on
        held events: the same decisions, in fewer and bigger batches. Past
        ``until`` (monotonic) the models still due wait for the next call, so
        one call's detector work stays short, unless a model has waited twice
        its interval: then it goes anyway, so none falls behind.
        """
        keep = self._held_shares()
        now = time.monotonic() if now is None else now
        interval = self.settings.decision_interval_s
        done = 0
        for model_id, state in self.models.items():
            if not len(state.buffer):
                continue
            bound = keep.get(model_id)
            if not final and bound is None:
                waited = now - self.released_at.get(model_id, -math.inf)
                if waited < interval or (waited < 2 * interval and time.monotonic() >= until):
                    continue
            self.released_at[model_id] = now
            done += state.release(
                final, self.settings, self.configs.get(model_id), self.references.get(model_id), self.budget, bound
            )
        self._bound_pending()
        return done

    def _held_shares(self) -> dict[str, int]:
        """Over the partition's bound on held events, each model may keep only its share (the largest give most)."""
        held = {m: len(s.buffer) for m, s in self.models.items() if len(s.buffer)}
        total, cap = sum(held.values()), self.settings.max_held_per_partition
        if total <= cap:
            return {}
        return {m: int(n * cap / total) for m, n in held.items()}

    def _bound_pending(self) -> None:
        """Over the partition's bound on waiting predictions, the models holding the most give up their oldest."""
        waiting = {m: len(s.join.pending) for m, s in self.models.items()}
        excess = sum(waiting.values()) - self.settings.max_pending_per_partition
        for model_id in sorted(waiting, key=waiting.__getitem__, reverse=True):
            if excess <= 0:
                break
            state = self.models[model_id]
            excess -= state.join.evict_oldest(min(excess, waiting[model_id] // 2 + 1))
            state.dirty = state.changed = True

    def snapshot(self) -> Snapshot:
        """The checkpoint's meta, the blobs of the models that changed since the last save, those dropped, and
        the changes of the models' join stores (saved apart from the blobs, so a long wait for labels costs
        a save what changed, not every prediction waiting)."""
        self.meta.models = sorted(self.models)
        snap = Snapshot(b"")
        for model_id, state in self.models.items():
            if state.changed or model_id not in self.saved_models:
                state.buffer.compact()
                changes = join_store.store_changes(state.join)
                if changes is not None:
                    snap.joins[model_id] = changes
                with join_store.without_stores(state.join, changes):
                    snap.blobs[model_id] = codec.encode(state)
        snap.dropped = sorted(self.saved_models - set(self.models))
        snap.meta = codec.encode(self.meta)
        return snap

    def saved(self, snap: Snapshot) -> None:
        for model_id in snap.blobs:
            self.models[model_id].changed = False
        for model_id, changes in snap.joins.items():
            join_store.saved(self.models[model_id].join, changes)
        self.saved_models |= set(snap.blobs)
        self.saved_models -= set(snap.dropped)

    def restore(
        self, meta_blob: bytes | None, blobs: dict[bytes, bytes], joins: dict[str, dict[bytes, bytes]] | None = None
    ) -> None:
        """Take a checkpoint: its meta, model blobs and (format 4) each model's join stores."""
        if meta_blob is None:
            return
        meta = codec.decode(meta_blob, TaskMeta)
        if meta.format not in READABLE:
            raise CheckpointError(f"checkpoint format {meta.format}, this worker reads {READABLE}")
        meta.format = FORMAT
        self.meta = meta
        for raw_id, blob in blobs.items():
            model_id = raw_id.decode()
            if model_id not in meta.models:
                continue  # written by a save whose meta did not land: not part of this checkpoint
            state = codec.decode(blob, ModelState)
            state.changed = False
            if joins and joins.get(model_id):
                join_store.restore(state.join, joins[model_id])
            self.models[model_id] = state
            if state.monitor is not None:
                state.monitor.reference = self.references.get(model_id, {})
        self.saved_models = set(self.models)
        self.budget.remaining -= sum(state.monitored_features() for state in self.models.values())
        for state in self.models.values():
            state.set_budget(self.budget)
        missing = set(meta.models) - set(self.models)
        if missing:
            raise CheckpointError(f"checkpoint lacks {len(missing)} of its models")


class CheckpointStore:
    """Leases and checkpoints of one consumer group's tasks in Redis, all in one cluster hash slot."""

    def __init__(self, client: AsyncClient, keys: RedisKeys, group: str, topic: str) -> None:
        self.client = client
        self.keys = keys
        self.scope = f"{group}/{topic}"
        self._save = client.register_script(_FENCED_SAVE)
        self.last_bytes = self.last_models = 0  # of the last save

    def key(self, partition: int, what: str) -> str:
        """The Redis key of one part of a task's checkpoint (``lease``, ``meta``, ``models``, ``join:<model>``)."""
        return f"{self.keys.prefix}checkpoint:{{{self.scope}}}:{partition}:{what}"

    async def acquire(
        self, partition: int, lease: int | None = None
    ) -> tuple[int, bytes | None, dict[bytes, bytes], dict[str, dict[bytes, bytes]]]:
        """Take the task's lease (or keep ``lease``); return it with the latest checkpoint: meta, model blobs and
        each model's join stores. (Once the lease is ours, no other save lands: the second read is consistent.)"""
        pipe = self.client.pipeline(transaction=True)
        if lease is None:
            pipe.incr(self.key(partition, "lease"))
        pipe.get(self.key(partition, "meta"))
        pipe.hgetall(self.key(partition, "models"))
        found = await pipe.execute()
        if lease is None:
            lease = int(found.pop(0))
        meta, models = found
        ids = [raw.decode() for raw in models]
        pipe = self.client.pipeline(transaction=False)
        for model_id in ids:
            pipe.hgetall(self._join_key(partition, model_id))
        stores = await pipe.execute() if ids else []
        return lease, meta, models, {m: s for m, s in zip(ids, stores, strict=True) if s}

    def _join_key(self, partition: int, model_id: str) -> str:
        return self.key(partition, f"join:{model_id}")

    async def save(self, tasks: list[TaskState]) -> set[int]:
        """Save the tasks' checkpoints at once if every lease is still ours; return the partitions lost."""
        keys: list[str] = []
        args: list[Any] = []
        snapshots = []
        for task in tasks:
            snap = task.snapshot()
            snapshots.append((task, snap))
            p = task.partition
            keys += [self.key(p, "lease"), self.key(p, "meta"), self.key(p, "models")]
            keys += [self._join_key(p, model_id) for model_id in snap.joins]
            keys += [self._join_key(p, model_id) for model_id in snap.dropped]
            args += [task.lease, snap.meta, len(snap.blobs)]
            for model_id, blob in snap.blobs.items():
                args += [model_id, blob]
            args += [len(snap.dropped), *snap.dropped, len(snap.joins)]
            for changes in snap.joins.values():
                args += [int(changes.full), len(changes.fields) // 2, *changes.fields]
        if not tasks:
            return set()
        self.last_bytes = sum(len(a) for a in args if isinstance(a, bytes))
        self.last_models = sum(len(snap.blobs) for _, snap in snapshots)
        lost = {tasks[int(t)].partition for t in await self._save(keys=keys, args=args)}
        if not lost:
            for task, snap in snapshots:
                task.saved(snap)
        return lost
