"""The read-only JSON API's answers, read from Redis: any worker serves any model.

Dashboards and services read models, features, segments and alerts over HTTP
and need no Redis credentials. Every answer is built here from the contract's
keys (:class:`~streams.keys.RedisKeys`); :mod:`streams.web` only routes to it.
The shapes are described in ``streams/openapi.json`` (served at
``/api/openapi.json``), and the tests validate real answers against it.

Hash values are typed as JSON would have them (``"12"`` is 12); feature and
segment entries and alerts are the JSON objects Redis holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import orjson
import redis

from streams.history import HistoryPolicy
from streams.history_read import (
    MAX_SPARKLINE_MODELS,
    HistoryQuery,
    parse_distributions,
    parse_history,
    queue_distributions,
    queue_history,
)
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient
from streams.redis_values import alert_of, as_text, json_values, typed_hash
from streams.registry import read_live_workers_async
from streams.settings import Settings

MAX_PAGE = 1000  # models one page of /api/models holds at most
MAX_RECENT = 1000  # alerts one /api/alerts/recent answer returns at most
STREAM_BLOCK_MS = 2_000  # one read of the alerts stream waits this long (under redis-py's 5 s socket timeout)


_SEVERITY = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class ModelPage:
    """One page of ``GET /api/models``: ``limit`` models from ``offset``, ids containing ``search``.

    >>> ModelPage.parse("20", "5000", "status", "churn")
    ModelPage(offset=20, limit=1000, worst_first=True, search='churn')
    """

    offset: int = 0
    limit: int = 50
    worst_first: bool = False
    search: str = ""

    @classmethod
    def parse(cls, offset: str | None, limit: str | None, sort: str | None, search: str | None) -> ModelPage:
        return cls(
            max(0, _integer(offset, 0)), max(1, min(MAX_PAGE, _integer(limit, 50))), sort == "status", search or ""
        )


def sparkline_point(point: dict[str, Any]) -> dict[str, Any]:
    """A history point cut to what a sparkline draws.

    >>> sparkline_point({"t": 60.0, "status": "ok", "predictions": 9, "metric": "mae", "mae": 0.5, "rmse": 1.0})
    {'t': 60.0, 'status': 'ok', 'metric': 'mae', 'mae': 0.5}
    """
    kept = ("t", "status", "metric", point.get("metric"), "estimated_accuracy")
    return {k: point[k] for k in kept if k is not None and k in point}


def _integer(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API, self-contained: the contract's alert schema embedded.

    >>> doc = openapi_document()
    >>> doc["openapi"], doc["components"]["schemas"]["Alert"]["properties"]["model_id"]
    ('3.1.0', {'$ref': '#/components/schemas/Alert/$defs/model_id'})
    """
    package = files("streams")
    doc: dict[str, Any] = json.loads((package / "openapi.json").read_text(encoding="utf-8"))
    alert = (package / "schemas" / "alert.schema.json").read_text(encoding="utf-8")
    embedded = json.loads(alert.replace('"#/$defs/', '"#/components/schemas/Alert/$defs/'))
    for key in ("$id", "$schema"):  # its references now point into this document
        embedded.pop(key, None)
    doc["components"]["schemas"]["Alert"] = embedded
    return doc


class ReadApi:
    """Answers of the read-only API, from Redis.

    >>> ReadApi.recent_limit("5"), ReadApi.recent_limit(None), ReadApi.recent_limit("100000")
    (5, 100, 1000)
    """

    def __init__(self, client: AsyncClient, keys: RedisKeys, history_policy: HistoryPolicy | None = None) -> None:
        self.client = client
        self.keys = keys
        self.history_policy = history_policy or HistoryPolicy.of(Settings())

    async def model_ids(self) -> list[str]:
        return sorted(as_text(m) for m in await self.client.smembers(self.keys.models))

    async def models(self, page: ModelPage | None = None) -> dict[str, Any]:
        """``GET /api/models``: every model's hash, or one page of them (``total`` and ``statuses`` count all)."""
        ids = await self.model_ids()
        answer: dict[str, Any] = {}
        if page is not None:
            ids, answer = await self._page(ids, page)
        pipe = self.client.pipeline(transaction=False)
        for model_id in ids:
            pipe.hgetall(self.keys.model(model_id))
        found = await pipe.execute() if ids else []
        models = [{**typed_hash(raw), "model_id": m} for m, raw in zip(ids, found, strict=True) if raw]
        return {"models": models, **answer}

    async def _page(self, ids: list[str], page: ModelPage) -> tuple[list[str], dict[str, Any]]:
        """The ids of one page (worst status first, if asked), and the counts over all models."""
        chosen = [m for m in ids if page.search in m] if page.search else ids
        pipe = self.client.pipeline(transaction=False)
        for model_id in chosen:
            pipe.hget(self.keys.model(model_id), "status")
        statuses = [as_text(s) if s is not None else "unknown" for s in (await pipe.execute() if chosen else [])]
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        if page.worst_first:
            ranked = sorted(zip(statuses, chosen, strict=True), key=lambda sm: (-_SEVERITY.get(sm[0], -1), sm[1]))
            chosen = [m for _, m in ranked]
        shown = chosen[page.offset : page.offset + page.limit]
        return shown, {"total": len(chosen), "offset": page.offset, "statuses": counts}

    async def model(self, model_id: str) -> dict[str, Any] | None:
        """``GET /api/models/{model_id}``: its hash, features, segments and open alerts; None if unknown."""
        keys = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.model(model_id))
        pipe.hgetall(keys.features(model_id))
        pipe.hgetall(keys.segments(model_id))
        pipe.hgetall(keys.open_alerts(model_id))
        queue_distributions(pipe, keys, model_id)
        summary, features, segments, alerts, shown = await pipe.execute()
        if not summary:
            return None
        return {
            "model": {**typed_hash(summary), "model_id": model_id},
            "features": json_values(features),
            "segments": [entry for _, entry in sorted(json_values(segments).items())],
            "open_alerts": sorted(json_values(alerts).values(), key=lambda a: a["detected_at"]),
            "distributions": parse_distributions(shown),
        }

    async def history(self, model_id: str, query: HistoryQuery) -> dict[str, Any] | None:
        """``GET /api/models/{model_id}/history``: its points and its features' series; None if unknown."""
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.keys.model(model_id))
        queue_history(pipe, self.keys, model_id, query)
        known, *answers = await pipe.execute()
        return parse_history(answers, model_id, query, self.history_policy) if known else None

    async def sparklines(self, model_ids: list[str], points: int) -> dict[str, Any]:
        """``GET /api/history?models=a,b``: the newest points of a few models, for an overview's sparklines:
        each point's time, status, metric and estimated accuracy only."""
        query = HistoryQuery(points=points, features=())
        chosen = list(dict.fromkeys(model_ids))[:MAX_SPARKLINE_MODELS]
        pipe = self.client.pipeline(transaction=False)
        for model_id in chosen:
            queue_history(pipe, self.keys, model_id, query)
        found = await pipe.execute() if chosen else []
        history = {}
        for model_id, raw in zip(chosen, found, strict=True):
            drawn = parse_history([raw], model_id, query, self.history_policy)["points"]
            history[model_id] = [sparkline_point(p) for p in drawn]
        return {"history": history}

    async def open_alerts(self, model_id: str | None = None) -> dict[str, Any]:
        """``GET /api/alerts/open``: the alerts firing now, of every model or of one."""
        ids = [model_id] if model_id else await self.model_ids()
        pipe = self.client.pipeline(transaction=False)
        for m in ids:
            pipe.hvals(self.keys.open_alerts(m))
        found = await pipe.execute() if ids else []
        alerts = [orjson.loads(raw) for values in found for raw in values]
        return {"alerts": sorted(alerts, key=lambda a: (a["detected_at"], a["alert_id"]))}

    @staticmethod
    def recent_limit(text: str | None) -> int:
        try:
            limit = int(text) if text is not None else 100
        except ValueError:
            limit = 100
        return max(1, min(MAX_RECENT, limit))

    async def recent_alerts(self, limit: int, model_id: str | None = None) -> dict[str, Any]:
        """``GET /api/alerts/recent``: the newest alerts of the stream, newest first (of one model, if given)."""
        scan = limit if model_id is None else MAX_RECENT * 10
        entries: Any = await self.client.xrevrange(self.keys.alerts_stream, count=scan)
        alerts = []
        for entry_id, fields in entries:
            alert = alert_of(fields)
            if model_id is None or alert["model_id"] == model_id:
                alerts.append({"id": as_text(entry_id), "alert": alert})
            if len(alerts) >= limit:
                break
        return {"alerts": alerts}

    async def workers(self) -> dict[str, Any]:
        """``GET /api/workers``: the live workers (expired entries left out)."""
        live = await read_live_workers_async(self.client, self.keys)
        return {"workers": [{"worker_id": w, **entry} for w, entry in sorted(live.items())]}

    async def alert_events(self, after: str) -> AsyncIterator[tuple[str, dict[str, Any]] | None]:
        """Alerts added to the stream after entry ``after`` (see :meth:`stream_end`), as (entry id, alert).

        Yields None when nothing came for a while (time for a keep-alive).
        """
        last = after  # a position, not "$": nothing added between two reads is missed
        while True:
            try:
                found: Any = await self.client.xread({self.keys.alerts_stream: last}, block=STREAM_BLOCK_MS, count=100)
            except redis.TimeoutError:  # a socket timeout shorter than the block: nothing came
                found = []
            if not found:
                yield None
                continue
            for _, entries in found.items() if isinstance(found, dict) else found:  # RESP3 answers a map
                for entry_id, fields in entries:
                    last = as_text(entry_id)
                    yield last, alert_of(fields)

    async def stream_end(self) -> str:
        """The id of the stream's newest entry: reading after it gives what comes from now on."""
        newest: Any = await self.client.xrevrange(self.keys.alerts_stream, count=1)
        return as_text(newest[0][0]) if newest else "0-0"


__all__ = ["ModelPage", "ReadApi", "openapi_document"]
