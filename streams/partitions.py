"""Partition ownership: each worker's share of models, restored from and saved to checkpoints.

A partition of the internal events topic is the unit of ownership. Its state
(the models, the next offset to apply, and per-source watermarks) is saved
atomically in one Redis value, fenced by a lease: whoever loaded the partition
last holds the lease, and a save with an older lease is refused. Faust commits
an offset only after the checkpoint that covers it is saved, so after any crash
the owner restores the checkpoint and skips what it had already applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio

from streams import checkpoint
from streams.keys import RedisKeys
from streams.settings import Settings
from streams.state import ModelState

if TYPE_CHECKING:
    from streams.model_config import ModelConfig

log = logging.getLogger(__name__)

_FENCED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


@dataclass
class PartitionState:
    """The models of one events partition, and how far into its stream they reflect."""

    partition: int
    settings: Settings
    models: dict[str, ModelState] = field(default_factory=dict)
    next_offset: int = 0
    watermarks: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> (offset, index)
    lease: int = 0
    unacked: list[Any] = field(default_factory=list)
    just_loaded: bool = False
    rewinding: bool = False  # sought back to next_offset; later offsets still buffered are ignored
    overflow_events: int = 0  # events of models beyond max_models_per_partition, not monitored
    configs: dict[str, ModelConfig] = field(default_factory=dict)  # shared with the owner
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # shared with the owner

    def model(self, model_id: str) -> ModelState | None:
        state = self.models.get(model_id)
        if state is None:
            if len(self.models) >= self.settings.max_models_per_partition:
                return None
            state = self.models[model_id] = ModelState.create(
                model_id, self.settings, file=self.configs.get(model_id)
            )
            if model_id in self.references:
                state.monitor.set_reference(self.references[model_id])
        return state

    def is_ahead(self, offset: int) -> bool:
        """True when the consumer is past the checkpoint: messages in between would be lost.

        That happens only when another worker saved a checkpoint while this one
        still consumed (a zombie); the caller seeks back to ``next_offset``.
        """
        ahead = self.just_loaded and self.next_offset > 0 and offset > self.next_offset
        self.just_loaded = False
        self.rewinding = self.rewinding or ahead
        return ahead

    def apply_message(self, offset: int, value: bytes) -> bool:
        """Apply one internal message unless the checkpoint already covers it."""
        if offset < self.next_offset:
            return False
        doc = orjson.loads(value)
        source = doc.get("src")
        applied = tuple(self.watermarks.get(source, (-1, -1))) if source else (-1, -1)
        newest = applied
        for wire in doc["events"]:
            origin = (wire.get("o", -1), wire.get("i", 0))
            if source and origin <= applied:
                continue  # re-ingested after an ingest crash: applied already
            newest = max(newest, origin)
            state = self.model(wire["model_id"])
            if state is None:
                self.overflow_events += 1
                continue
            state.apply(wire)
        if source:
            self.watermarks[source] = newest
        self.next_offset = offset + 1
        return True

    def snapshot(self) -> bytes:
        return checkpoint.dumps({
            "offset": self.next_offset, "watermarks": self.watermarks, "models": self.models,
            "overflow_events": self.overflow_events,
        })

    def restore(self, blob: bytes) -> None:
        doc = checkpoint.loads(blob)
        self.next_offset = doc["offset"]
        self.watermarks = doc["watermarks"]
        self.models = doc["models"]
        self.overflow_events = doc.get("overflow_events", 0)
        for model_id, state in self.models.items():
            state.dirty = True
            # a file applied while nobody owned this partition; segments for a checkpoint older than them
            state.configure(self.settings, self.configs.get(model_id), changed=model_id in self.configs)
            state.monitor.reference = self.references.get(model_id, {})


class CheckpointStore:
    """Leases and checkpoints of one consumer group's partitions in Redis."""

    def __init__(self, client: redis.asyncio.Redis, keys: RedisKeys, group: str, topic: str) -> None:
        self.client = client
        self.keys = keys
        self.scope = f"{group}/{topic}"
        self._fenced_set = client.register_script(_FENCED_SET)

    def _key(self, partition: int, what: str) -> str:
        return f"{self.keys.prefix}partition:{{{self.scope}/{partition}}}:{what}"

    async def acquire(self, partition: int) -> tuple[int, bytes | None]:
        """Take the partition's lease; return it with the latest checkpoint."""
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(self._key(partition, "lease"))
        pipe.get(self._key(partition, "checkpoint"))
        lease, blob = await pipe.execute()
        return int(lease), blob

    async def save(self, partition: int, lease: int, blob: bytes) -> bool:
        """Save a checkpoint if the lease is still ours; False if another worker took over."""
        keys = [self._key(partition, "lease"), self._key(partition, "checkpoint")]
        return bool(await self._fenced_set(keys=keys, args=[lease, blob]))


@dataclass
class PartitionOwner:
    """The partitions this worker owns now, loaded on first use."""

    settings: Settings
    store: CheckpointStore
    owned: dict[int, PartitionState] = field(default_factory=dict)
    configs: dict[str, ModelConfig] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_version: int = -1

    def apply_configs(
        self, version: int, configs: dict[str, ModelConfig], references: dict[str, dict[str, Any]]
    ) -> int:
        """Take new per-model configurations and references; update the owned models they change."""
        changed = {m for m in set(configs) | set(self.configs) if configs.get(m) != self.configs.get(m)}
        self.configs.clear()
        self.configs.update(configs)
        self.references.clear()
        self.references.update(references)
        self.config_version = version
        touched = 0
        for part in self.owned.values():
            for model_id in (changed | set(references)) & set(part.models):
                state = part.models[model_id]
                if model_id in changed:
                    state.configure(self.settings, configs.get(model_id))
                if references.get(model_id, {}) != state.monitor.reference:
                    state.monitor.set_reference(references[model_id])
                    touched += 1
                state.dirty = True
        return touched

    async def get(self, partition: int) -> PartitionState:
        part = self.owned.get(partition)
        if part is None:
            part = PartitionState(partition, self.settings, configs=self.configs, references=self.references)
            part.lease, blob = await self.store.acquire(partition)
            if blob is not None:
                try:
                    part.restore(blob)
                except checkpoint.CheckpointError as exc:
                    log.error("partition %d: checkpoint unusable, starting empty: %s", partition, exc)
            part.just_loaded = True
            log.info("partition %d: owned (lease %d), resuming at offset %d with %d models",
                     partition, part.lease, part.next_offset, len(part.models))
            self.owned[partition] = part
        return part

    def unacked(self) -> int:
        return sum(len(part.unacked) for part in self.owned.values())

    def overflow_events(self) -> int:
        return sum(part.overflow_events for part in self.owned.values())

    def dirty_models(self) -> list[ModelState]:
        return [s for part in self.owned.values() for s in part.models.values() if s.dirty]

    async def checkpoint(self) -> int:
        """Save every partition with unacknowledged events, then let Faust commit them."""
        saved = 0
        for part in list(self.owned.values()):
            if not part.unacked:
                continue
            if await self.store.save(part.partition, part.lease, part.snapshot()):
                for event in part.unacked:
                    event.ack()
                part.unacked.clear()
                saved += 1
            else:
                log.warning("partition %d: another worker holds the lease now; dropping it", part.partition)
                self.owned.pop(part.partition, None)
        return saved

    def drop(self, partition: int) -> None:
        self.owned.pop(partition, None)
