"""One worker's processing: fetched records in; alerts, forwards, Redis state and checkpoints out.

    fetched records --decode once--> per-partition queues --event-time order--> tasks
        a task's own model:  arrive -> held for event-time order -> join, detectors, alerts
        another task's model: forwarded, once, to its events partition
        a rejected event:     the dead-letter topic

Everything runs under one lock, so a rebalance or a timer never interleaves
with a batch half applied. Offsets are committed only after the checkpoint
that covers them is saved and every forward they caused is delivered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import redis

from detectors import Alert
from streams.alignment import Aligner, Queued
from streams.errors import CheckpointError
from streams.events import Invalid, decode_outcomes, decode_predictions
from streams.redis_state import RedisStateWriter
from streams.routing import FORWARD_DECODER, DeadLetter, Forwarded, Partitioner, RawRecord, Routed, forwarded_messages
from streams.settings import Settings
from streams.tasks import CheckpointStore, TaskState

log = logging.getLogger("driftline")


class TopicPartition(Protocol):
    topic: str
    partition: int


class Record(Protocol):
    """What the consumer fetched (aiokafka's ConsumerRecord)."""

    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None


@dataclass
class Outputs:
    """Where the pipeline sends: each returns an awaitable that resolves once the message is delivered."""

    forward: Callable[[int, bytes], Awaitable[Awaitable[Any]]]
    dead_letter: Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]
    alert: Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]
    commit: Callable[[dict[Any, int]], Awaitable[bool]]
    seek: Callable[[Any, int], Awaitable[None]]
    rewind: Callable[[], Awaitable[None]]  # every assigned partition back to its committed offset
    unread: Callable[[Any], bool]  # whether a partition has records not fetched yet


async def until_done(action: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Retry a Redis action until it succeeds: while Redis is away the worker pauses, loses nothing."""
    delay = 0.1
    while True:
        try:
            return await action()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("cannot %s, retrying in %.1f s: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass
class PipelineStats:
    """What a worker has done since it started: for its registry entry, metrics and benchmarks."""

    records: int = 0
    events: int = 0  # valid events applied or forwarded
    forwarded: int = 0
    dead_letters: int = 0
    alerts: int = 0
    flushes: int = 0
    flush_seconds: float = 0.0
    checkpoints: int = 0
    checkpoint_seconds: float = 0.0
    checkpoint_bytes: int = 0  # the last save's
    checkpoint_models: int = 0  # models written by the last save
    write_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)


@dataclass
class Pipeline:
    """The partitions this worker reads, their tasks, and the flush and checkpoint cycle."""

    settings: Settings
    partitions: int  # of the internal events topic
    store: CheckpointStore
    writer: RedisStateWriter
    out: Outputs
    tasks: dict[int, TaskState] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_version: int = -1

    def __post_init__(self) -> None:
        s = self.settings
        self.lock = asyncio.Lock()
        self.route = Partitioner(self.partitions)
        self.aligner: Aligner[Any] = Aligner(s.max_task_idle_ms / 1000.0, slack_s=max(s.max_disorder_s / 2, 0.5))
        self.expected: dict[Any, int] = {}  # events partitions: next offset to apply, as checkpointed
        self.done: dict[Any, int] = {}  # input partitions: next offset to commit once the tasks are saved
        self.forwards: dict[tuple[int, str], list[Forwarded]] = {}
        self.letters: list[DeadLetter] = []
        self.deliveries: list[Awaitable[Any]] = []
        self.applied_since_flush = 0
        self.last_flush = self.last_checkpoint = self.last_write = time.monotonic()
        self.last_input = time.monotonic()
        self.idle_released = True
        self.checkpoint_took = self.write_took = 0.0
        self.write_pending = False  # a write was put off by the pace: models wait, dirty, to be written
        self.stats = PipelineStats()
        self.observe_seconds: Callable[[str, float], None] | None = None  # ("flush" | "checkpoint", seconds)

    @property
    def idle_s(self) -> float:
        return self.settings.watermark_idle_s

    # -- assignment --------------------------------------------------------------------------

    async def assign(self, assigned: set[Any]) -> None:
        """Take the tasks of newly assigned events partitions."""
        async with self.lock:
            for tp in sorted(
                (tp for tp in assigned if tp.topic == self.settings.topic_events), key=lambda t: t.partition
            ):
                if tp.partition not in self.tasks:
                    await self._load(tp.partition)
                self.expected[tp] = self.tasks[tp.partition].next_offset(tp.topic)
            self._idle_from_now()

    def _idle_from_now(self) -> None:
        """Start the idleness rule afresh: events restored from a checkpoint are held, and released once no
        input arrives for ``watermark_idle_s``, as events read here would be (even if no input comes at all)."""
        self.last_input, self.idle_released = time.monotonic(), False

    async def _load(self, partition: int, lease: int | None = None) -> None:
        """Load a task from its checkpoint: taking its lease, or (``lease``) keeping the one it has."""
        task = TaskState(partition, self.settings, configs=self.configs, references=self.references)
        task.lease, meta, blobs, joins = await until_done(
            lambda: self.store.acquire(partition, lease), "load a checkpoint"
        )
        try:
            task.restore(meta, blobs, joins)
        except (CheckpointError, msgspec.DecodeError, ValueError) as exc:
            log.error("partition %d: checkpoint unusable, starting empty: %s", partition, exc)
            task = TaskState(
                partition, self.settings, configs=self.configs, references=self.references, lease=task.lease
            )
        for model_id, state in task.models.items():
            if model_id in self.configs:
                state.configure(self.settings, self.configs[model_id])
        log.info(
            "partition %d: owned (lease %d), %d models, offsets %s",
            partition,
            task.lease,
            len(task.models),
            task.meta.offsets,
        )
        self.tasks[partition] = task

    async def revoke(self, revoked: set[Any]) -> None:
        """Before partitions go: a final checkpoint, so their next owner replays nothing."""
        async with self.lock:
            try:
                await self._flush(final_checkpoint=True)
            except Exception as exc:  # noqa: BLE001 (the next owner replays from the last checkpoint)
                log.warning("final checkpoint before revocation failed: %s", exc)
            for tp in revoked:
                if tp.topic == self.settings.topic_events:
                    self.tasks.pop(tp.partition, None)
                self.expected.pop(tp, None)
                self.done.pop(tp, None)
            self.aligner.drop(revoked)

    # -- records in --------------------------------------------------------------------------

    def held_back(self) -> set[Any]:
        """Partitions not to fetch now (their queue is full: they run ahead)."""
        return self.aligner.full()

    async def take(self, records: Mapping[Any, list[Record]], assigned: set[Any]) -> None:
        """Decode fetched records once, queue them per partition, and apply what event-time order allows."""
        now = time.monotonic()
        if records:
            self.last_input, self.idle_released = now, False
        for tp, batch in records.items():
            if tp in assigned:
                self.aligner.add(tp, [self._decode(tp, record) for record in batch])
                self.stats.records += len(batch)
        async with self.lock:
            for tp, run in self.aligner.take(now, self.out.unread, assigned):
                await self._apply(tp, run)
            await self.tick(now)

    def _decode(self, tp: Any, record: Record) -> Queued:
        record_ts = record.timestamp / 1000.0 if record.timestamp is not None else time.time()
        raw = RawRecord(tp.topic, tp.partition, record.offset, record.key, record.value, record_ts)
        s = self.settings
        if tp.topic == s.topic_events:
            try:
                batch = FORWARD_DECODER.decode(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                error = f"message: not a driftline internal message ({exc})"
                return Queued(record.offset, record_ts, record_ts, (raw, None, error))
            times = [f.event.timestamp for f in batch.events if not isinstance(f.event, Invalid)]
            return Queued(record.offset, min(times, default=record_ts), record_ts, (raw, batch, None))
        decoded = (decode_predictions if tp.topic == s.topic_predictions else decode_outcomes)(record.value, record_ts)
        first = min((e.timestamp for e in decoded.events), default=record_ts)
        return Queued(record.offset, first, record_ts, (raw, decoded, None))

    async def _apply(self, tp: Any, run: list[Queued]) -> None:
        if tp.topic == self.settings.topic_events:
            await self._apply_forwarded(tp, run)
            return
        routed, now = Routed(), time.time()
        for queued in run:
            raw, decoded, _ = queued.payload
            routed.add(raw, decoded, self.route, now)
        for (owner, source), events in routed.events.items():
            self.stats.events += len(events)
            task = self.tasks.get(owner)
            if task is None:  # another worker's model: forwarded to it, once
                self.forwards.setdefault((owner, source), []).extend(events)
                self.stats.forwarded += len(events)
                continue
            task.arrive_new(source, events)  # this worker's: applied here, no hop
        self.letters += routed.dead_letters
        self.applied_since_flush += len(run)
        self.done[tp] = run[-1].offset + 1

    async def _apply_forwarded(self, tp: Any, run: list[Queued]) -> None:
        task = self.tasks.get(tp.partition)
        if task is None:
            return
        expected = self.expected.get(tp, 0)
        for queued in run:
            if queued.offset < expected:
                continue  # applied before the checkpoint this task was restored from
            if queued.offset > expected > 0:  # another worker saved past us (we were a zombie): rewind
                log.warning(
                    "%s[%d]: at %d, past the checkpoint at %d: rewinding",
                    tp.topic,
                    tp.partition,
                    queued.offset,
                    expected,
                )
                await self.out.seek(tp, expected)
                self.aligner.drop([tp])
                return
            raw, batch, error = queued.payload
            if batch is None:
                self.letters.append(DeadLetter(raw, error or "message: unreadable", None, raw.value, time.time()))
            else:
                task.arrive_new(batch.source, batch.events)
            expected = self.expected[tp] = queued.offset + 1
            task.applied(tp.topic, queued.offset)
        self.applied_since_flush += len(run)

    # -- flush and checkpoint ----------------------------------------------------------------

    async def tick(self, now: float | None = None) -> None:
        """Flush when due, release on idleness, checkpoint when due. Call under the lock."""
        now = time.monotonic() if now is None else now
        idle = not self.idle_released and now - self.last_input >= self.idle_s and not len(self.aligner)
        if (
            idle
            or self.applied_since_flush >= 64
            or (self.applied_since_flush and now - self.last_flush >= self.settings.batch_window_s)
        ):
            await self._flush(final_checkpoint=False, release_all=idle)
            self.idle_released = self.idle_released or idle
        elif self._checkpoint_due(now) or (self.write_pending and now - self.last_write >= self._write_pace()):
            await self._flush(final_checkpoint=False)

    async def checkpoint_now(self) -> None:
        async with self.lock:
            await self._flush(final_checkpoint=True)

    async def _flush(self, final_checkpoint: bool, release_all: bool = False) -> None:
        self.last_flush = started = time.monotonic()
        self.applied_since_flush = 0
        self.stats.flushes += 1
        await self._send_forwards()
        arrived = self._dirty()
        if arrived:  # counts first: how fresh they are does not wait on this flush's detector work
            await self._write(arrived, [], force=False)
        until = time.monotonic() + self.settings.batch_window_s / 2  # decisions due later wait for the next flush
        for task in self.tasks.values():
            task.release(release_all, started, until)
        changed = self._dirty()
        fired = await self._alerts(changed)
        if changed or fired:
            await self._write(changed, fired, force=final_checkpoint or bool(fired) or release_all)
        took = time.monotonic() - started
        self.stats.flush_seconds += took
        if self.observe_seconds is not None:
            self.observe_seconds("flush", took)
        if final_checkpoint or self._checkpoint_due(time.monotonic()):
            await self._checkpoint()

    def _dirty(self) -> list[Any]:
        return [state for task in self.tasks.values() for state in task.models.values() if state.dirty]

    async def _send_forwards(self) -> None:
        for (owner, source), events in self.forwards.items():
            for value in forwarded_messages(source, events):
                self.deliveries.append(await self.out.forward(owner, value))
        self.forwards = {}
        self.stats.dead_letters += len(self.letters)
        for letter in self.letters:
            self.deliveries.append(await self.out.dead_letter(letter.record.key, letter.to_json()))
            log.warning(
                "dead letter from %s[%d]@%d: %s",
                letter.record.topic,
                letter.record.partition,
                letter.record.offset,
                letter.error,
            )
        self.letters = []

    async def _alerts(self, changed: list[Any]) -> list[Alert]:
        now = time.time()
        calibrations = 1  # at most one windowed-test calibration (tens of ms) per flush
        for state in changed:
            calibrations -= state.calibrate_pending(calibrations)
            if calibrations <= 0:
                break
        fired = [alert for state in changed for alert in state.alerts(now)]
        self.stats.alerts += len(fired)
        for alert in fired:
            self.deliveries.append(await self.out.alert(alert.model_id.encode(), msgspec.json.encode(alert.to_dict())))
            log.info(
                "alert %s %s %s %s: %s",
                alert.status,
                alert.model_id,
                alert.evidence.kind,
                alert.evidence.feature or "",
                alert.evidence.message,
            )
        return fired

    async def _write(self, changed: list[Any], fired: list[Alert], force: bool) -> None:
        """Write the changed models to Redis, at most a share of the worker's time (alerts at once)."""
        now = time.monotonic()
        if not force and now - self.last_write < self._write_pace():
            self.write_pending = True  # written by a later flush, or by tick() once the pace allows
            return
        self.write_pending = False
        started = time.monotonic()
        await until_done(lambda: self.writer.write(changed, fired, time.time()), "write state to Redis")
        self.last_write = time.monotonic()
        self.write_took = self.last_write - started
        self.stats.write_seconds += self.write_took

    def _write_pace(self) -> float:
        """The shortest time between two writes: the batch window, stretched so writes take at most a sixth."""
        return max(self.settings.batch_window_s, self.write_took / 0.2)

    def _checkpoint_due(self, now: float) -> bool:
        """Every ``checkpoint_interval_s``, stretched so checkpoints take at most ``checkpoint_max_share`` of time."""
        s = self.settings
        return now - self.last_checkpoint >= max(s.checkpoint_interval_s, self.checkpoint_took / s.checkpoint_max_share)

    async def _checkpoint(self) -> None:
        started = time.monotonic()
        if self.deliveries:
            await asyncio.gather(*self.deliveries)  # forwards, dead letters and alerts delivered first
            self.deliveries = []
        tasks = list(self.tasks.values())
        lost = await until_done(lambda: self.store.save(tasks), "checkpoint to Redis")
        if lost:
            await self._recover(lost)
        else:
            offsets = dict(self.done)
            offsets |= {
                tp: self.tasks[tp.partition].next_offset(tp.topic)
                for tp in self.expected
                if tp.partition in self.tasks and self.tasks[tp.partition].next_offset(tp.topic) > 0
            }
            if offsets:
                await self.out.commit(offsets)
        self.last_checkpoint = time.monotonic()
        self.checkpoint_took = self.last_checkpoint - started
        self.stats.checkpoints += 1
        self.stats.checkpoint_seconds += self.checkpoint_took
        if self.observe_seconds is not None:
            self.observe_seconds("checkpoint", self.checkpoint_took)
        self.stats.checkpoint_bytes, self.stats.checkpoint_models = self.store.last_bytes, self.store.last_models

    async def _recover(self, lost: set[int]) -> None:
        """Another worker took some tasks (we were a zombie): drop them, reload the rest as last saved, re-read."""
        log.warning(
            "partitions %s: another worker holds their lease now; dropping them, and reloading %s "
            "from their last checkpoint",
            sorted(lost),
            sorted(set(self.tasks) - lost),
        )
        kept = {p: task.lease for p, task in self.tasks.items() if p not in lost}
        self.tasks = {}
        for partition, lease in kept.items():
            await self._load(partition, lease)
        self.expected = {
            tp: self.tasks[tp.partition].next_offset(tp.topic) for tp in self.expected if tp.partition in self.tasks
        }
        self.done, self.forwards, self.letters = {}, {}, []
        self.aligner.drop(list(self.aligner.queues))
        await self.out.rewind()
        self._idle_from_now()

    async def apply_configs(
        self,
        version: int,
        configs: dict[str, Any],
        references: dict[str, dict[str, Any]],
    ) -> int:
        """Take new per-model configurations and references; update the owned models they change."""
        async with self.lock:
            changed = {m for m in set(configs) | set(self.configs) if configs.get(m) != self.configs.get(m)}
            self.configs.clear()
            self.configs.update(configs)
            self.references.clear()
            self.references.update(references)
            self.config_version = version
            touched = 0
            for task in self.tasks.values():
                for model_id in (changed | set(references)) & set(task.models):
                    state = task.models[model_id]
                    if model_id in changed:
                        state.configure(self.settings, configs.get(model_id))
                    reference = references.get(model_id, {})
                    if state.monitor is not None and reference != state.monitor.reference:
                        state.monitor.set_reference(reference)
                        touched += 1
                    state.dirty = state.changed = state.decided = True
            return touched

    def stats_entry(self) -> dict[str, float]:
        """The worker's counters, for its registry entry."""
        stats = dataclasses.asdict(self.stats)
        stats["uptime_seconds"] = round(time.monotonic() - stats.pop("started"), 3)
        stats["models"] = sum(len(task.models) for task in self.tasks.values())
        return stats

    def overflow_events(self) -> int:
        return sum(task.meta.overflow_events for task in self.tasks.values())
