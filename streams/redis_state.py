"""Redis keys of contract v1, and the writer that updates them once per batch."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
from redis.typing import EncodableT, FieldT

from detectors import Alert
from streams.history import HistoryRecorder
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient
from streams.registry import WorkerRegistry
from streams.state import ModelState

__all__ = ["RedisStateWriter", "WorkerRegistry"]  # WorkerRegistry lives in streams.registry now

log = logging.getLogger(__name__)


class RedisStateWriter:
    """Writes the state of changed models and new alerts in one pipeline per write.

    With a ``history``, the models' history points that are due go in the same pipeline.
    A model's features, segments and history are written only when its detectors
    ran since its last write; otherwise its hash (the counts) is all that moved.
    """

    def __init__(
        self, client: AsyncClient, keys: RedisKeys, stream_maxlen: int, history: HistoryRecorder | None = None
    ) -> None:
        self.client = client
        self.keys = keys
        self.stream_maxlen = stream_maxlen
        self.history = history

    async def write(self, states: Sequence[ModelState], alerts: list[Alert], now: float) -> int:
        """Queue every write, send them in one round trip; returns the number of commands."""
        pipe = self.client.pipeline(transaction=False)
        keys = self.keys
        models = []
        for state in states:
            models.append(state.model_id)
            # redis-py's mapping has an invariant key type: any field type, so a dict of str keys is cast
            pipe.hset(keys.model(state.model_id), mapping=cast(Mapping[FieldT, EncodableT], state.summary(now)))
            if state.decided or _removals(state):  # else only counts moved: the rest is as written
                self._queue_detectors(pipe, state)
        if models:
            pipe.sadd(keys.models, *models)
        for alert in alerts:
            body = orjson.dumps(alert.to_dict())
            key = keys.open_alerts(alert.model_id)
            if alert.status == "firing":
                pipe.hset(key, alert.alert_id, body)
            else:
                pipe.hdel(key, alert.alert_id)
            pipe.xadd(keys.alerts_stream, {"alert": body}, maxlen=self.stream_maxlen, approximate=True)
        commands = len(pipe)
        if commands:
            await pipe.execute()
        for state in states:  # cleared once written: a retry after a failed write writes them all again
            state.dirty = state.decided = False
            if state.monitor is not None:
                state.monitor.removed_features = []
            if state.segments is not None:
                state.segments.removed = []
            state.history_marks = []
        return commands

    def _queue_detectors(self, pipe: Any, state: ModelState) -> None:
        """The model's features, segments and new history points."""
        keys, monitor, segments = self.keys, state.monitor, state.segments
        if monitor is not None:
            features: dict[FieldT, EncodableT] = {
                name: orjson.dumps({**f.summary(), "status": monitor.alert_book.status(name)})
                for name, f in monitor.features.items()
            }
            if features:
                pipe.hset(keys.features(state.model_id), mapping=features)
            if monitor.removed_features:
                pipe.hdel(keys.features(state.model_id), *monitor.removed_features)
                pipe.hdel(keys.distributions(state.model_id), *monitor.removed_features)
        if segments is not None:
            if segments.removed:  # before the new entries: a segment chosen again stays
                pipe.hdel(keys.segments(state.model_id), *segments.removed)
            entries: dict[FieldT, EncodableT] = {key: orjson.dumps(entry) for key, entry in segments.summary().items()}
            if entries:
                pipe.hset(keys.segments(state.model_id), mapping=entries)
        if self.history is not None:
            self.history.queue(pipe, state)


def _removals(state: ModelState) -> bool:
    """Whether the model dropped features or segments that Redis still lists."""
    return bool(
        (state.monitor is not None and state.monitor.removed_features)
        or (state.segments is not None and state.segments.removed)
    )
