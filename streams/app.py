"""The Faust application: topics, the consumer group, timers and rebalance hooks around the pipeline.

    predictions, outcomes --> tasks (partition k: its models' events apply there) --> alerts, Redis
                    \\--> driftline.events (events of models another task owns, keyed by model_id)
                    \\--> driftline.deadletter

Each worker reads its share of every topic's partitions (Faust's co-partitioning
assignor keeps partition ``k`` of all of them on one worker), and the
:class:`~streams.pipeline.Pipeline` does the work in batches.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import faust
import redis
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.api import ReadApi
from streams.consumer import Consumer
from streams.history import HistoryPolicy, HistoryRecorder
from streams.keys import RedisKeys
from streams.metrics import DriftCap, WorkerMetrics
from streams.model_config import ModelConfigStore
from streams.pipeline import Outputs, Pipeline, until_done
from streams.redis_client import async_client, connect
from streams.redis_state import RedisStateWriter
from streams.registry import WorkerRegistry
from streams.security import faust_credentials
from streams.settings import Settings
from streams.tasks import CheckpointStore
from streams.web import Readiness, install

log = logging.getLogger("driftline")


class _Transport(faust_aiokafka.Transport):
    Consumer = Consumer


class DriftlineApp(faust.App):
    """A Faust app that carries driftline's settings and its pipeline."""

    driftline_settings: Settings
    driftline_pipeline: Pipeline

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
        broker_commit_interval=3600.0,  # driftline commits itself, after each checkpoint
        producer_linger_ms=1,
        broker_credentials=faust_credentials(settings),
        stream_wait_empty=False,
    )
    app.driftline_settings = settings
    raw: dict[str, Any] = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    inputs = [app.topic(name, **raw) for name in (settings.topic_predictions, settings.topic_outcomes)]
    events = app.topic(settings.topic_events, partitions=partitions, **raw)
    alerts = app.topic(settings.topic_alerts, **raw)
    deadletters = app.topic(settings.topic_deadletter, **raw)
    for topic in (*inputs, events):
        app.topics.add(topic)  # subscribed: the pipeline takes their records from the consumer

    client = async_client(settings)
    keys = RedisKeys(settings.redis_prefix)
    history = HistoryRecorder(keys, HistoryPolicy.of(settings))
    writer = RedisStateWriter(client, keys, settings.alerts_stream_maxlen, history)

    async def forward(partition: int, value: bytes) -> Any:
        return await events.send(value=value, partition=partition)

    async def dead_letter(key: bytes | None, value: bytes) -> Any:
        return await deadletters.send(key=key, value=value)

    async def alert(key: bytes, value: bytes) -> Any:
        return await alerts.send(key=key, value=value)

    def consumer() -> Consumer:  # what _Transport makes, created on first use
        return cast(Consumer, app.consumer)

    async def commit(offsets: dict[Any, int]) -> bool:
        return bool(await consumer()._commit(offsets))  # noqa: SLF001 (faust's commit of given offsets)

    async def seek(tp: Any, offset: int) -> None:
        await consumer().seek(tp, offset)

    async def rewind() -> None:
        await consumer().seek_to_committed()

    outputs = Outputs(forward, dead_letter, alert, commit, seek, rewind, lambda tp: consumer().unread(tp))
    pipeline = Pipeline(
        settings, partitions, CheckpointStore(client, keys, settings.app_id, settings.topic_events), writer, outputs
    )
    app.driftline_pipeline = pipeline
    registry = WorkerRegistry(client, keys, ttl_s=settings.session_timeout_s)
    configs = ModelConfigStore(keys)
    _install_web(app, settings, pipeline, ReadApi(client, keys, history.policy))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's signal type: any arity; faust sends one
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await pipeline.revoke(set(revoked))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's signal type: any arity; faust sends one
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await until_done(lambda: connect(client), "reach Redis")
        await pipeline.assign(set(assigned))
        await registry.announce(sorted(pipeline.tasks), pipeline.overflow_events())

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]  # faust's timer returns a bare Callable
    async def reload_model_configs() -> None:
        try:
            found = await configs.load_if_changed(client, pipeline.config_version)
        except (redis.RedisError, OSError, ValueError) as exc:
            log.warning("cannot read model configurations: %s", exc)
            return
        if found is not None:
            touched = await pipeline.apply_configs(*found)
            log.info(
                "model configurations version %d: %d models, %d running models changed",
                found[0],
                len(found[1]),
                touched,
            )

    # an entry lives one session timeout
    @app.timer(interval=min(2.0, settings.session_timeout_s / 3))  # type: ignore[untyped-decorator]  # (as above)
    async def heartbeat() -> None:
        await registry.announce(None, pipeline.overflow_events(), pipeline.stats_entry())

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's signal type: any arity
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        """SIGTERM: a final checkpoint, so a restart replays nothing."""
        try:
            await pipeline.checkpoint_now()
        except Exception as exc:  # noqa: BLE001 (a restart replays from the previous checkpoint instead)
            log.warning("final checkpoint failed: %s", exc)
        await registry.leave()

    return app


def _install_web(app: DriftlineApp, settings: Settings, pipeline: Pipeline, api: ReadApi) -> None:
    """/metrics, /healthz, /ready and the JSON API on Faust's web server (when DRIFTLINE_WEB_PORT is set)."""
    readiness = Readiness(app, pipeline, api, settings)
    metrics = WorkerMetrics(
        pipeline, readiness.lags, DriftCap(settings.metrics_drift_features_per_model, settings.metrics_max_drift_series)
    )
    pipeline.observe_seconds = metrics.observe
    install(app, api, readiness, metrics)
