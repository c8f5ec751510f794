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
from typing import Any

import faust
import orjson
import redis
import redis.asyncio as aioredis
from faust.transport.drivers import aiokafka as faust_aiokafka

from detectors import Alert
from streams.model_config import ModelConfigStore
from streams.monitor import Monitor
from streams.partitions import CheckpointStore, PartitionOwner
from streams.redis_state import RedisKeys, RedisStateWriter, WorkerRegistry
from streams.routing import RawRecord, route
from streams.security import faust_credentials
from streams.settings import Settings

log = logging.getLogger("driftline")


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

    owner = PartitionOwner(settings, CheckpointStore(writer.client, writer.keys, settings.app_id, settings.topic_events))

    async def publish(alert: Alert) -> Any:
        return await alerts.send(key=alert.model_id.encode(), value=orjson.dumps(alert.to_dict()))

    stage = Monitor(settings, owner, writer, publish, lambda: app.consumer)

    @app.agent(events, name="driftline.monitor")
    async def monitor(stream: faust.StreamT) -> None:
        # Each internal message carries many events, so they are taken one at a time,
        # without Faust's automatic acknowledgement: they are acknowledged after the
        # checkpoint that covers them, so Faust never commits past a checkpoint.
        async for event in stream.noack().events():
            await stage.take(event)

    @app.timer(interval=settings.batch_window_s)
    async def flush_when_idle() -> None:
        await stage.flush_if_pending()

    configs = ModelConfigStore(writer.keys)

    @app.timer(interval=2.0)
    async def reload_model_configs() -> None:
        try:
            found = await configs.load_if_changed(writer.client, owner.config_version)
        except (redis.RedisError, OSError, ValueError) as exc:
            log.warning("cannot read model configurations: %s", exc)
            return
        if found is not None:
            async with stage.lock:
                touched = owner.apply_configs(*found)
            log.info("model configurations version %d: %d models, %d running models changed",
                     found[0], len(found[1]), touched)

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint_when_idle() -> None:
        await stage.checkpoint_now()

    registry = WorkerRegistry(writer.client, writer.keys)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        async with stage.lock:
            try:
                await stage.flush(force_checkpoint=True)  # spare the next owner a replay
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
            await asyncio.wait_for(stage.checkpoint_now(), timeout=10)
        except Exception as exc:  # noqa: BLE001: a restart replays from the previous checkpoint instead
            log.warning("final checkpoint failed: %s", exc)
        await registry.leave()

    return app


def _raw_record(message: Any) -> RawRecord:
    return RawRecord(
        message.topic, message.partition, message.offset, message.key, message.value,
        message.timestamp or time.time(),
    )
