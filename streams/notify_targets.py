"""Where ``driftline notify`` delivers: Alertmanager's v2 API and webhooks, over HTTP.

A target's ``send`` either returns (the target accepted every alert given),
raises :class:`TargetDown` (try again later: no connection, a timeout, HTTP
5xx, 408, 425 or 429) or :class:`Rejected` (the target refuses these alerts
for good: any other 4xx).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import aiohttp
import orjson
import redis

from streams.alert_payloads import alertmanager_alert, parse_time, slack_body
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient

log = logging.getLogger("driftline.notify")
RETRYABLE = frozenset({408, 425, 429})


class TargetDown(Exception):
    """The target did not take the alerts now; they are tried again."""


class Rejected(Exception):
    """The target refuses the alerts for good (HTTP 4xx)."""


async def post_json(session: aiohttp.ClientSession, url: str, body: Any) -> None:
    """POST ``body`` as JSON; raise :class:`TargetDown` or :class:`Rejected` unless the answer is 2xx."""
    try:
        async with session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as resp:
            text = (await resp.text(errors="replace"))[:300]
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TargetDown(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= resp.status < 300:
        return
    if resp.status >= 500 or resp.status in RETRYABLE:
        raise TargetDown(f"HTTP {resp.status}: {text}")
    raise Rejected(f"HTTP {resp.status}: {text}")


def payload(build: Any, alert: dict[str, Any], *args: Any) -> dict[str, Any]:
    """``build(alert, *args)``; an alert it cannot read (a field missing, a bad time) is :class:`Rejected`."""
    try:
        body: dict[str, Any] = build(alert, *args)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Rejected(f"not a driftline alert: {type(exc).__name__}: {exc}") from exc
    return body


class Target(Protocol):
    name: str
    url: str
    batch_size: int  # alerts per send

    async def start(self, session: aiohttp.ClientSession, client: AsyncClient, keys: RedisKeys) -> None: ...

    async def send(self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]) -> None: ...

    async def keep_alive(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None: ...


class WebhookTarget:
    """A generic webhook: one POST per alert, a body Slack's incoming webhooks accept (:func:`slack_body`).

    >>> WebhookTarget("webhook-1", "https://hooks.example/x").batch_size
    1
    """

    batch_size = 1

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url

    async def start(self, session: aiohttp.ClientSession, client: AsyncClient, keys: RedisKeys) -> None:
        return None

    async def send(self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            await post_json(session, self.url, payload(slack_body, alert))

    async def keep_alive(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        return None


class AlertmanagerTarget:
    """Alertmanager's v2 API (``POST /api/v2/alerts``), batches of alerts.

    Alertmanager ends a firing alert that is not sent again, so the alerts
    firing now are posted again every ``resend_s`` (they are read from Redis at
    start, then followed from the topic); a resolved alert is posted with its
    end, so Alertmanager resolves it at once and notifies its receivers.

    >>> AlertmanagerTarget("alertmanager", "http://am:9093/", 60.0).endpoint
    'http://am:9093/api/v2/alerts'
    """

    batch_size = 200

    def __init__(self, name: str, url: str, resend_s: float) -> None:
        self.name, self.url, self.resend_s = name, url, resend_s
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.firing: dict[str, tuple[float, dict[str, Any]]] = {}  # alert_id -> (fired at, alert)
        self.lock = asyncio.Lock()  # a refresh never lands after the resolve it predates

    @property
    def hold_s(self) -> float:
        return 4 * self.resend_s

    async def start(self, session: aiohttp.ClientSession, client: AsyncClient, keys: RedisKeys) -> None:
        """Learn the alerts firing now from Redis, so a restarted notify keeps them active."""
        try:
            models = [m.decode() if isinstance(m, bytes) else m for m in await client.smembers(keys.models)]
            pipe = client.pipeline(transaction=False)
            for model_id in models:
                pipe.hvals(keys.open_alerts(model_id))
            for values in await pipe.execute() if models else []:
                for raw in values:
                    alert = orjson.loads(raw)
                    self.firing[alert["alert_id"]] = (parse_time(alert["detected_at"]), alert)
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "alertmanager: cannot read the open alerts from Redis (they are sent when they come again): %s", exc
            )

    async def send(self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]) -> None:
        async with self.lock:
            await self._send(session, alerts)

    async def _send(self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]) -> None:
        now = time.time()
        posted = []
        for alert in alerts:
            fired = self.firing.get(alert["alert_id"])
            posted.append(payload(alertmanager_alert, alert, fired[0] if fired else None, now, self.hold_s))
        await post_json(session, self.endpoint, posted)
        for alert in alerts:
            if alert["status"] == "firing":
                self.firing.setdefault(alert["alert_id"], (parse_time(alert["detected_at"]), alert))
            else:
                self.firing.pop(alert["alert_id"], None)

    async def keep_alive(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Post the firing alerts again every ``resend_s`` until ``stop``."""
        while not stop.is_set():
            async with self.lock:
                await self._refresh(session)
            try:
                await asyncio.wait_for(stop.wait(), self.resend_s)
            except TimeoutError:
                pass

    async def _refresh(self, session: aiohttp.ClientSession) -> None:
        if not self.firing:
            return
        now = time.time()
        body = [alertmanager_alert(alert, fired, now, self.hold_s) for fired, alert in self.firing.values()]
        try:
            await post_json(session, self.endpoint, body)
        except (TargetDown, Rejected) as exc:
            log.warning("alertmanager: cannot refresh %d firing alerts: %s", len(body), exc)


__all__ = ["AlertmanagerTarget", "Rejected", "Target", "TargetDown", "WebhookTarget", "payload", "post_json"]
