"""The monitor stage: apply internal messages to owned partitions, publish alerts, write Redis, checkpoint.

All steps run under one lock, so a timer's flush or a revocation never
interleaves with a batch half applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

import redis

from detectors import Alert
from streams.partitions import PartitionOwner
from streams.redis_state import RedisStateWriter
from streams.settings import Settings

log = logging.getLogger("driftline")

MAX_UNACKED = 20_000  # messages held for the next checkpoint are bounded whatever the interval
FLUSH_EVERY = 64  # internal messages between two flushes at most

T = TypeVar("T")


async def until_done(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Retry a Redis action until it succeeds: while Redis is away the worker pauses, loses nothing."""
    delay = 0.1
    while True:
        try:
            return await action()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("cannot %s, retrying in %.1f s: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class Monitor:
    """Per-worker monitoring: ``take`` each internal message; flush and checkpoint when due."""

    def __init__(
        self, settings: Settings, owner: PartitionOwner, writer: RedisStateWriter,
        publish: Callable[[Alert], Awaitable[Any]], consumer: Callable[[], Any],
    ) -> None:
        self.settings = settings
        self.owner = owner
        self.writer = writer
        self.publish = publish  # sends one alert; returns a future that resolves when delivered
        self.consumer = consumer  # Faust's consumer, once the app has one
        self.lock = asyncio.Lock()
        self.last_flush = self.last_checkpoint = time.monotonic()
        self.unflushed = 0
        self.checkpoint_took = 0.0  # seconds the last checkpoint took

    async def take(self, event: Any) -> None:
        """Apply one internal message (a Faust event, not yet acknowledged)."""
        async with self.lock:
            await self._apply(event)
            self.unflushed += 1
            if self.unflushed >= FLUSH_EVERY or time.monotonic() - self.last_flush >= self.settings.batch_window_s:
                await self.flush(force_checkpoint=False)

    async def flush_if_pending(self) -> None:
        if self.unflushed:
            async with self.lock:
                await self.flush(force_checkpoint=False)

    async def checkpoint_now(self) -> None:
        async with self.lock:
            await self.flush(force_checkpoint=True)

    async def _apply(self, event: Any) -> None:
        message = event.message
        consumer = self.consumer()
        if message.tp not in consumer.assignment():
            return  # buffered before a rebalance took the partition away
        part = await until_done(lambda: self.owner.get(message.partition), "load a checkpoint")
        if part.is_ahead(message.offset):
            log.warning("partition %d: consumer at %d is past the checkpoint at %d; rewinding",
                        message.partition, message.offset, part.next_offset)
            await consumer.seek(message.tp, part.next_offset)
        if part.rewinding and message.offset != part.next_offset:
            return  # still buffered from before the rewind
        part.rewinding = False
        part.apply_message(message.offset, message.value)
        part.unacked.append(event)

    async def flush(self, force_checkpoint: bool) -> None:
        """Publish new alerts, write state to Redis, and checkpoint when due. Call under the lock."""
        now = time.time()
        self.last_flush, self.unflushed = time.monotonic(), 0
        changed = self.owner.dirty_models()
        calibrations = 1  # at most one windowed-test calibration (tens of ms) per flush
        for state in changed:
            calibrations -= state.calibrate_pending(calibrations)
            if calibrations <= 0:
                break
        fired = [alert for state in changed for alert in state.alerts(now)]
        await asyncio.gather(*[await self.publish(alert) for alert in fired])  # delivered before the checkpoint
        for alert in fired:
            log.info("alert %s %s %s %s: %s", alert.status, alert.model_id, alert.evidence.kind,
                     alert.evidence.feature or "", alert.evidence.message)
        await until_done(lambda: self.writer.write(changed, fired, now), "write state to Redis")
        if force_checkpoint or self._checkpoint_due() or self.owner.unacked() >= MAX_UNACKED:
            started = time.monotonic()
            await until_done(self.owner.checkpoint, "checkpoint to Redis")
            self.last_checkpoint = time.monotonic()
            self.checkpoint_took = self.last_checkpoint - started

    def _checkpoint_due(self) -> bool:
        """Every ``checkpoint_interval_s``, stretched so checkpoints take at most ``checkpoint_max_share`` of the time.

        A large state (many models, many segments) then costs a bounded share of
        the worker, at the price of a longer replay after a crash; the number of
        messages held for the next checkpoint stays bounded by ``MAX_UNACKED``.
        """
        settings = self.settings
        interval = max(settings.checkpoint_interval_s, self.checkpoint_took / settings.checkpoint_max_share)
        return time.monotonic() - self.last_checkpoint >= interval
