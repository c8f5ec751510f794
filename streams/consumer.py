"""driftline's Faust consumer: fetched batches straight to the pipeline, co-partitioned assignment.

Faust delivers each message through its conductor, an event, a stream and an
agent: about 80-100 us of Python per message (shared/MEASUREMENTS.md), more
than all of driftline's own work on an event. So the worker keeps Faust for
what it does well (the consumer group and its rebalances, the consumer thread
and its fetches, offsets, the producer, timers and the web server) and takes
each fetched batch of records straight from Faust's consumer to
:class:`streams.pipeline.Pipeline`, which decodes it once and works in columns.

Two more changes to Faust's aiokafka driver:

- its fetch wait is a constant 1.5 s; here it is ``DRIFTLINE_FETCH_MAX_WAIT_MS``;
- without tables it assigns partitions round-robin; here it uses Faust's own
  co-partitioning assignor, so partition ``k`` of the input topics goes to the
  worker that owns partition ``k`` of the events topic, and well-keyed events
  take one hop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.pipeline import Pipeline
from streams.settings import Settings

FETCH_TIMEOUT_S = 0.05  # the longest a drain waits for records before it ticks (idleness, checkpoints)


class _DriftlineApp(Protocol):
    """What :class:`streams.app.DriftlineApp` (which imports this module) adds to Faust's app."""

    driftline_settings: Settings
    driftline_pipeline: Pipeline


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with driftline's fetch wait and co-partitioned assignment."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = cast(_DriftlineApp, self.app).driftline_settings.fetch_max_wait_ms
        self._assignor = self.app.assignor
        consumer._partition_assignment_strategy = [self.app.assignor]
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, draining fetched batches into the pipeline instead of per-message streams."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def unread(self, tp: Any) -> bool:
        """Whether the broker holds records of ``tp`` not fetched yet, as far as the last fetch told.

        Before the first fetch answers, that is unknown: then yes. This reads
        aiokafka's partition state (the same numbers as its ``highwater()`` and
        ``position()``, without a round trip to the consumer thread); if that
        ever fails, the answer is no, which costs order (the bounded-disorder
        buffer still sorts events), never data.
        """
        try:
            state = self._thread._ensure_consumer()._subscription.subscription.assignment.state_value(tp)
            highwater, position = state.highwater, state._position
        except (AttributeError, AssertionError, RuntimeError):
            return False
        if highwater is None or position is None:
            return True
        return bool(highwater > position)

    def lag(self, tp: Any) -> int | None:
        """Records of ``tp`` on the broker not fetched yet (highwater - position, as ``unread``), None while unknown."""
        try:
            state = self._thread._ensure_consumer()._subscription.subscription.assignment.state_value(tp)
            highwater, position = state.highwater, state._position
        except (AttributeError, AssertionError, RuntimeError):
            return None
        return None if highwater is None or position is None else max(0, highwater - position)

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        pipeline = cast(_DriftlineApp, self.app).driftline_pipeline
        if active_partitions is not None:
            active_partitions = set(active_partitions) - pipeline.held_back()
            if not active_partitions:
                await asyncio.sleep(0.005)
                return {}
        return await super()._getmany(active_partitions, timeout)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs in the worker
        pipeline = cast(_DriftlineApp, self.app).driftline_pipeline
        consumer_stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, _ = await self._wait_next_records(FETCH_TIMEOUT_S)
                if self.should_stop:
                    return
                await pipeline.take(records or {}, self.assignment())
                await asyncio.sleep(0)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return  # stopping anyway: the broker closed the consumer first
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return  # a SIGTERM during a rebalance: stop cleanly, as Faust's own drain does
            raise
