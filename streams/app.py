"""The Faust application: an ingest agent that validates and routes, and a monitor agent.

    predictions, outcomes --ingest--> driftline.events (partitioned by model_id) --monitor--> alerts, Redis
                                \\--> driftline.deadletter

The ingest stage re-keys every event by ``model_id`` so that one model's state
lives on exactly one worker, whatever key or partitioner the producer used.
Both stages take events in batches, so Faust's per-message cost is paid once
per batch downstream, and Redis is written once per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

import faust
import orjson
import redis
import redis.asyncio as aioredis
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.redis_state import RedisKeys, RedisStateWriter, WorkerRegistry
from streams.routing import RawRecord, route
from streams.security import faust_credentials
from streams.settings import Settings
from streams.model_config import ModelConfigStore
from streams.partitions import CheckpointStore, PartitionOwner

log = logging.getLogger("driftline")

# Messages held for the next checkpoint are bounded whatever the interval.
MAX_UNACKED = 20_000


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust hard-codes a 1.5 s fetch wait; driftline makes it a setting."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.driftline_settings.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class DriftlineApp(faust.App):
    """A Faust app that carries driftline's settings and its short fetch wait."""

    driftline_settings: Settings

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings, partitions: int) -> DriftlineApp:
    """Build the worker app; ``partitions`` is the events topic's partition count."""
    app = DriftlineApp(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_request_timeout=max(90.0, settings.session_timeout_s + 5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_linger_ms=1,
        broker_credentials=faust_credentials(settings),
        # Acknowledgements wait for checkpoints: Faust must not wait for them to drain on a
        # rebalance or at shutdown (the revocation and shutdown hooks checkpoint instead).
        stream_wait_empty=False,
    )
    app.driftline_settings = settings
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    inputs = app.topic(settings.topic_predictions, settings.topic_outcomes, **raw)
    events = app.topic(settings.topic_events, partitions=partitions, **raw)
    alerts = app.topic(settings.topic_alerts, **raw)
    deadletters = app.topic(settings.topic_deadletter, **raw)
    writer = RedisStateWriter(
        aioredis.Redis.from_url(settings.redis_url), RedisKeys(settings.redis_prefix), settings.alerts_stream_maxlen
    )

    @app.agent(inputs, name="driftline.ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max_events, within=settings.batch_window_s):
            records = [_raw_record(event.message) for event in batch]
            routed = route(records, settings.topic_predictions, partitions, time.time())
            sent = [await events.send(value=value, partition=partition) for partition, value in routed.messages()]
            for letter in routed.dead_letters:
                sent.append(await deadletters.send(key=letter.record.key, value=letter.to_json()))
                log.warning("dead letter from %s[%d]@%d: %s", letter.record.topic,
                            letter.record.partition, letter.record.offset, letter.error)
            await asyncio.gather(*sent)  # delivered before Faust may commit the inputs

    lock = asyncio.Lock()
    owner = PartitionOwner(settings, CheckpointStore(writer.client, writer.keys, settings.app_id, settings.topic_events))
    last_checkpoint = [time.monotonic()]
    last_flush, unflushed = [time.monotonic()], [0]

    async def flush(force_checkpoint: bool) -> None:
        """Publish new alerts, write state to Redis, and checkpoint when due."""
        now = time.time()
        last_flush[0], unflushed[0] = time.monotonic(), 0
        changed = owner.dirty_models()
        calibrations = 1  # at most one windowed-test calibration (tens of ms) per flush
        for state in changed:
            calibrations -= state.monitor.calibrate_pending(calibrations)
            if calibrations <= 0:
                break
        fired = [alert for state in changed for alert in state.alerts(now)]
        sent = [await alerts.send(key=a.model_id.encode(), value=orjson.dumps(a.to_dict())) for a in fired]
        await asyncio.gather(*sent)
        for alert in fired:
            log.info("alert %s %s %s %s: %s", alert.status, alert.model_id, alert.evidence.kind,
                     alert.evidence.feature or "", alert.evidence.message)
        await _until_done(lambda: writer.write(changed, fired, now), "write state to Redis")
        due = time.monotonic() - last_checkpoint[0] >= settings.checkpoint_interval_s
        if force_checkpoint or due or owner.unacked() >= MAX_UNACKED:
            await _until_done(owner.checkpoint, "checkpoint to Redis")
            last_checkpoint[0] = time.monotonic()

    @app.agent(events, name="driftline.monitor")
    async def monitor(stream: faust.StreamT) -> None:
        # Each internal message carries many events, so they are taken one at a time,
        # without Faust's automatic acknowledgement: they are acknowledged after the
        # checkpoint that covers them, so Faust never commits past a checkpoint.
        async for event in stream.noack().events():
            async with lock:
                await apply_batch([event])
                unflushed[0] += 1
                if unflushed[0] >= 64 or time.monotonic() - last_flush[0] >= settings.batch_window_s:
                    await flush(force_checkpoint=False)

    @app.timer(interval=settings.batch_window_s)
    async def flush_when_idle() -> None:
        if unflushed[0]:
            async with lock:
                await flush(force_checkpoint=False)

    async def apply_batch(batch: list[Any]) -> None:
        assigned = app.consumer.assignment()
        for event in batch:
            message = event.message
            if message.tp not in assigned:
                continue  # buffered before a rebalance took the partition away
            part = await _until_done(lambda: owner.get(message.partition), "load a checkpoint")
            if part.is_ahead(message.offset):
                log.warning("partition %d: consumer at %d is past the checkpoint at %d; rewinding",
                            message.partition, message.offset, part.next_offset)
                await app.consumer.seek(message.tp, part.next_offset)
            if part.rewinding and message.offset != part.next_offset:
                continue  # still buffered from before the rewind
            part.rewinding = False
            part.apply_message(message.offset, message.value)
            part.unacked.append(event)

    configs = ModelConfigStore(writer.keys)

    @app.timer(interval=2.0)
    async def reload_model_configs() -> None:
        try:
            found = await configs.load_if_changed(writer.client, owner.config_version)
        except (redis.RedisError, OSError, ValueError) as exc:
            log.warning("cannot read model configurations: %s", exc)
            return
        if found is not None:
            async with lock:
                touched = owner.apply_configs(*found)
            log.info("model configurations version %d: %d models, %d running models changed",
                     found[0], len(found[1]), touched)

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint_when_idle() -> None:
        async with lock:
            await flush(force_checkpoint=True)

    registry = WorkerRegistry(writer.client, writer.keys)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        async with lock:
            try:
                await flush(force_checkpoint=True)  # spare the next owner a replay
            except Exception as exc:  # noqa: BLE001: the next owner replays from the last checkpoint
                log.warning("final checkpoint before revocation failed: %s", exc)
            for tp in revoked:
                if tp.topic == settings.topic_events:
                    owner.drop(tp.partition)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        owned = sorted(tp.partition for tp in assigned if tp.topic == settings.topic_events)
        await registry.announce(owned)

    @app.timer(interval=5.0)
    async def heartbeat() -> None:
        await registry.announce(None, owner.overflow_events())

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        """SIGTERM: a final checkpoint, so a restart replays nothing."""
        try:
            async with lock:
                await asyncio.wait_for(flush(force_checkpoint=True), timeout=10)
        except Exception as exc:  # noqa: BLE001: a restart replays from the previous checkpoint instead
            log.warning("final checkpoint failed: %s", exc)
        await registry.leave()

    return app


T = TypeVar("T")


async def _until_done(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Retry a Redis action until it succeeds: while Redis is away the worker pauses, loses nothing."""
    delay = 0.1
    while True:
        try:
            return await action()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("cannot %s, retrying in %.1f s: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _raw_record(message: Any) -> RawRecord:
    return RawRecord(
        message.topic, message.partition, message.offset, message.key, message.value,
        message.timestamp or time.time(),
    )
