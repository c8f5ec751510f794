"""The dashboard and the history endpoints, on the worker's web port beside the JSON API.

    GET /dashboard                          the page (overview, model pages, live alerts)
    GET /dashboard/{asset}                  its script and style sheet, from the package
    GET /api/models/{model_id}/history      a model's points and its features' series
    GET /api/history?models=a,b&points=N    the newest points of a few models (an overview's sparklines)

The page is plain HTML, one vanilla script drawing SVG and one style sheet,
all served from the package: no build step, no CDN, nothing outside the worker.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
import redis
from aiohttp import web
from faust.web import View

from streams.api import ReadApi
from streams.history_read import MAX_SPARKLINE_MODELS, HistoryQuery

ASSETS = {
    "charts.js": "application/javascript",
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
}
DASHBOARD_PATH = "/dashboard"


def asset(name: str) -> str:
    """The text of one of the dashboard's files (``index.html``, ``dashboard.js``, ``dashboard.css``)."""
    return (files("streams") / "dashboard" / name).read_text(encoding="utf-8")


def install_dashboard(app: Any, api: ReadApi) -> None:
    """Add the dashboard's page, its assets and the history endpoints to the Faust app's web server."""

    @app.page(DASHBOARD_PATH)
    class Page(View):
        async def get(self, request: web.Request) -> web.Response:
            return web.Response(text=asset("index.html"), content_type="text/html", headers=_NO_STORE)

    @app.page(DASHBOARD_PATH + "/")
    class PageSlash(View):
        async def get(self, request: web.Request) -> web.Response:
            raise web.HTTPFound(DASHBOARD_PATH)

    @app.page(DASHBOARD_PATH + "/{name}")
    class Asset(View):
        async def get(self, request: web.Request, name: str) -> web.Response:
            if name not in ASSETS:
                return web.Response(status=404, text="not found")
            return web.Response(text=asset(name), content_type=ASSETS[name], headers=_NO_STORE)

    @app.page("/api/models/{model_id}/history")
    class History(View):
        async def get(self, request: web.Request, model_id: str) -> web.Response:
            query = HistoryQuery.parse(
                request.query.get("points"), request.query.get("features"), api.history_policy.max_points
            )
            try:
                found = await api.history(model_id, query)
            except (redis.RedisError, OSError) as exc:
                return _unavailable(exc)
            if found is None:
                return _json({"error": f"no model {model_id!r}"}, 404)
            return _json(found)

    @app.page("/api/history")
    class Sparklines(View):
        async def get(self, request: web.Request) -> web.Response:
            models = [m for m in request.query.get("models", "").split(",") if m][:MAX_SPARKLINE_MODELS]
            points = HistoryQuery.parse(request.query.get("points"), "", api.history_policy.max_points).points
            try:
                return _json(await api.sparklines(models, points))
            except (redis.RedisError, OSError) as exc:
                return _unavailable(exc)


_NO_STORE = {"Cache-Control": "no-cache"}


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _unavailable(exc: BaseException) -> web.Response:
    return _json({"error": f"cannot read Redis: {exc}"}, 503)


__all__ = ["DASHBOARD_PATH", "asset", "install_dashboard"]
