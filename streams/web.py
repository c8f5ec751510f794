"""The worker's HTTP endpoints, on Faust's own web server (``DRIFTLINE_WEB_PORT``).

    GET /metrics                 Prometheus exposition (streams.metrics)
    GET /healthz                 200 while the process and its event loop live
    GET /ready                   200 when the worker owns its partitions, Redis answers and lag is under its bound
    GET /api/models              every model's state          GET /api/models/{model_id}   one, with features,
    GET /api/alerts/open         alerts firing now                                        segments, open alerts
    GET /api/alerts/recent       the newest alerts            GET /api/alerts/stream       server-sent events
    GET /api/workers             the live workers             GET /api/openapi.json        this API, described
    GET /api/models/{model_id}/history, GET /api/history, GET /dashboard: see streams.web_dashboard

Everything under ``/api`` is read-only and reads Redis (:mod:`streams.api`),
so any worker answers for any model. ``/ready`` answers 503 with its reasons
while a check fails; Kubernetes takes it as the readiness probe and
``/healthz`` as the liveness probe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from aiohttp import web
from faust.web import View

from streams.api import ModelPage, ReadApi, openapi_document
from streams.metrics import WorkerMetrics
from streams.registry import read_live_workers_async
from streams.settings import Settings
from streams.web_dashboard import install_dashboard

log = logging.getLogger(__name__)
REDIS_PING_TIMEOUT_S = 2.0


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


@dataclass
class Readiness:
    """The checks behind ``/ready``: partitions owned, Redis reachable, lag under ``ready_max_lag``."""

    app: Any  # the Faust app: its consumer's assignment, whether it is rebalancing
    pipeline: Any  # streams.pipeline.Pipeline: the tasks loaded
    api: ReadApi
    settings: Settings

    def lags(self) -> dict[tuple[str, int], int]:
        """Records behind on each assigned partition whose position is known."""
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return {}
        s = self.settings
        read = {s.topic_predictions, s.topic_outcomes, s.topic_events}  # not Faust's internal topics
        found = {}
        for tp in consumer.assignment():
            if tp.topic not in read:
                continue
            behind = consumer.lag(tp)
            if behind is not None:
                found[(tp.topic, tp.partition)] = behind
        return found

    async def check(self) -> tuple[bool, dict[str, Any]]:
        consumer = getattr(self.app, "_consumer", None)
        assigned = consumer.assignment() if consumer is not None else set()
        events = sorted(tp.partition for tp in assigned if tp.topic == self.settings.topic_events)
        owned = bool(events) and all(p in self.pipeline.tasks for p in events) and not self.app.rebalancing
        reasons = [] if owned else ["rebalancing" if self.app.rebalancing else "owns no loaded partitions"]
        workers: int | None = None
        try:
            live = await asyncio.wait_for(read_live_workers_async(self.api.client, self.api.keys), REDIS_PING_TIMEOUT_S)
            workers = len(live)
        except (TimeoutError, redis.RedisError, OSError) as exc:
            reasons.append(f"redis: {exc or type(exc).__name__}")
        lag = sum(self.lags().values())
        if lag > self.settings.ready_max_lag:
            reasons.append(f"lag {lag} > {self.settings.ready_max_lag}")
        return not reasons, {
            "ready": not reasons,
            "reasons": reasons,
            "partitions": events,
            "lag": lag,
            "redis": workers is not None,
            "live_workers": workers,
        }


def install(app: Any, api: ReadApi, readiness: Readiness, metrics: WorkerMetrics) -> None:
    """Add the endpoints to the Faust app's web server (before it starts)."""

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: web.Request) -> web.Response:
            body, content_type = metrics.negotiate(request.headers.get("Accept"))
            return web.Response(body=body, headers={"Content-Type": content_type})

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: web.Request) -> web.Response:
            return json_response({"alive": True})

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: web.Request) -> web.Response:
            ok, body = await readiness.check()
            return json_response(body, 200 if ok else 503)

    install_api(app, api)


def install_api(app: Any, api: ReadApi) -> None:
    """The read-only JSON API under ``/api``."""

    @app.page("/api/openapi.json")
    class OpenApi(View):
        async def get(self, request: web.Request) -> web.Response:
            return json_response(openapi_document())

    @app.page("/api/models")
    class Models(View):
        async def get(self, request: web.Request) -> web.Response:
            q = request.query
            paged = any(name in q for name in ("offset", "limit", "sort", "q"))
            page = ModelPage.parse(q.get("offset"), q.get("limit"), q.get("sort"), q.get("q")) if paged else None
            return await _answer(api.models(page))

    @app.page("/api/models/{model_id}")
    class Model(View):
        async def get(self, request: web.Request, model_id: str) -> web.Response:
            try:
                found = await api.model(model_id)
            except (redis.RedisError, OSError) as exc:
                return _unavailable(exc)
            if found is None:
                return json_response({"error": f"no model {model_id!r}"}, 404)
            return json_response(found)

    @app.page("/api/alerts/open")
    class OpenAlerts(View):
        async def get(self, request: web.Request) -> web.Response:
            return await _answer(api.open_alerts(request.query.get("model")))

    @app.page("/api/alerts/recent")
    class RecentAlerts(View):
        async def get(self, request: web.Request) -> web.Response:
            limit = ReadApi.recent_limit(request.query.get("limit"))
            return await _answer(api.recent_alerts(limit, request.query.get("model")))

    @app.page("/api/workers")
    class Workers(View):
        async def get(self, request: web.Request) -> web.Response:
            return await _answer(api.workers())

    @app.page("/api/alerts/stream")
    class AlertStream(View):
        async def get(self, request: web.Request) -> web.StreamResponse:
            return await stream_alerts(api, request)

    install_dashboard(app, api)


async def _answer(pending: Any) -> web.Response:
    try:
        return json_response(await pending)
    except (redis.RedisError, OSError) as exc:
        return _unavailable(exc)


def _unavailable(exc: BaseException) -> web.Response:
    log.warning("API: cannot read Redis: %s", exc)
    return json_response({"error": f"cannot read Redis: {exc}"}, 503)


async def stream_alerts(api: ReadApi, request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``event: alert``, ``id`` the alerts stream's entry id, ``data`` the alert.

    A client that reconnects with ``Last-Event-ID`` (browsers do) resumes after
    that entry, missing nothing the stream still holds; ``?after=ID`` does the
    same by hand. A comment line every 2 s of quiet keeps proxies from closing it.
    """
    after = request.headers.get("Last-Event-ID") or request.query.get("after")
    try:
        position = after or await api.stream_end()  # before the client hears it is subscribed
    except (redis.RedisError, OSError) as exc:
        return _unavailable(exc)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b": driftline alerts\n\n")
    try:
        async for item in api.alert_events(position):
            if item is None:
                await response.write(b": keep-alive\n\n")
                continue
            entry_id, alert = item
            await response.write(
                b"event: alert\nid: " + entry_id.encode() + b"\ndata: " + orjson.dumps(alert) + b"\n\n"
            )
    except ConnectionResetError:
        pass  # the client went away
    except (redis.RedisError, OSError) as exc:
        log.warning("alert stream: cannot read Redis: %s", exc)
    return response


__all__ = ["Readiness", "install", "json_response"]
