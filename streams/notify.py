"""``driftline notify``: alerts from the alerts topic to Alertmanager and webhooks, none lost.

Each target (Alertmanager, each webhook) reads the alerts topic in a consumer
group of its own, ``<DRIFTLINE_NOTIFY_GROUP>.<target>`` (default group prefix
``<app_id>-notify``), with a plain aiokafka consumer:

- an offset is committed only after the target accepted every alert before it;
- a failed delivery (no connection, a timeout, HTTP 5xx, 408 or 429) is tried
  again with exponential backoff (0.5 s doubling up to
  ``DRIFTLINE_NOTIFY_MAX_BACKOFF_S``), for as long as it takes; the alerts wait
  in Kafka, in order, so nothing is lost while a target is down, also across a
  restart of notify;
- one target down blocks only its own group: the others deliver on;
- a target that refuses an alert for good (another 4xx), or a message that is
  not an alert, is logged, counted and kept in the Redis stream
  ``<prefix>notify:rejected`` with the answer, then passed.

Every target's state (delivered, failures, rejected, alerts waiting, since when
it fails, the last error) is in the Redis hash ``<prefix>notify``, which
``driftline status`` prints. Delivery is at least once: after a crash an alert
may come again, with the same ``alert_id`` (Alertmanager deduplicates it).

Why aiokafka and not a Faust agent: this loop must not take the next alert
before the previous one is delivered, and must rewind to it after a failure
(a seek), per target; Faust acknowledges and commits on its own schedule, and
one app is one consumer group. A plain consumer per target does exactly this.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.keys import RedisKeys
from streams.notify_targets import AlertmanagerTarget, Rejected, Target, TargetDown, WebhookTarget
from streams.redis_client import AsyncClient, async_client
from streams.security import aiokafka_config
from streams.settings import Settings

log = logging.getLogger("driftline.notify")
REPORT_EVERY_S = 2.0
LOUD_EVERY_S = 30.0  # while a target stays down, an error line this often
REJECTED_MAXLEN = 10_000


@dataclass
class TargetReport:
    """One target's delivery state, as ``<prefix>notify`` holds it.

    >>> TargetReport("alertmanager", "http://am:9093/…", "driftline-notify.alertmanager", delivered=3).entry()[:40]
    b'{"target":"alertmanager","url":"http://a'
    """

    target: str
    url: str  # scheme and host only: webhook paths carry secrets
    group: str
    delivered: int = 0
    failures: int = 0
    rejected: int = 0
    pending: int = 0  # alerts on the topic not delivered yet
    failing_since: float | None = None
    last_error: str = ""
    last_delivery_at: float | None = None
    loud_at: float = field(default=0.0, repr=False)  # the last loud log line: not reported

    def entry(self) -> bytes:
        return orjson.dumps({k: v for k, v in asdict(self).items() if k != "loud_at"})


def redact(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/xyz`` as ``https://hooks.slack.com/…``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to ``cap_s``.

    >>> b = Backoff(cap_s=2.0, jitter=0.0)
    >>> [b.next() for _ in range(4)], b.reset(), b.next()
    ([0.5, 1.0, 2.0, 2.0], None, 0.5)
    """

    def __init__(self, cap_s: float, first_s: float = 0.5, jitter: float = 0.2) -> None:
        self.cap_s, self.first_s, self.jitter = cap_s, first_s, jitter
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap_s, self.first_s * 2**self.attempt)
        self.attempt += 1
        return float(delay * (1 + random.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.attempt = 0


class TargetLoop:
    """One target's consumer: read alerts in order, deliver, commit, rewind and retry after a failure."""

    def __init__(self, target: Target, settings: Settings, redis_client: AsyncClient, keys: RedisKeys) -> None:
        self.target = target
        self.settings = settings
        self.redis = redis_client
        self.keys = keys
        group = settings.notify_group or f"{settings.app_id}-notify"
        self.report = TargetReport(target.name, redact(target.url), f"{group}.{target.name}")
        self.backoff = Backoff(settings.notify_max_backoff_s)
        self.consumer: AIOKafkaConsumer | None = None

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            s.topic_alerts,
            group_id=self.report.group,
            enable_auto_commit=False,
            auto_offset_reset=s.notify_start,
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(s.rebalance_timeout_s * 1000),
            client_id=f"driftline-notify-{self.target.name}",
            **aiokafka_config(s),
        )
        await self.consumer.start()
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=500, max_records=200)
                if not await self._deliver(session, batch):
                    await self._wait(stop)
        finally:
            await self.consumer.stop()

    async def _deliver(self, session: aiohttp.ClientSession, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Deliver a fetched batch in order; on a failure rewind every partition to its first undelivered alert."""
        assert self.consumer is not None
        failed = False
        for tp, records in batch.items():
            done = 0
            while not failed and done < len(records):
                chunk = records[done : done + self.target.batch_size]
                try:
                    await self._send(session, chunk)
                except TargetDown as exc:
                    self._failed(str(exc))
                    failed = True
                    break
                done += len(chunk)
                await self.consumer.commit({tp: chunk[-1].offset + 1})
            if done < len(records):
                self.consumer.seek(tp, records[done].offset)
        if not failed and batch:
            self._recovered()
        return not failed

    async def _send(self, session: aiohttp.ClientSession, records: list[Any]) -> None:
        alerts = []
        for record in records:
            try:
                alert = orjson.loads(record.value)
                if not isinstance(alert, dict) or "alert_id" not in alert:
                    raise ValueError("not an alert object")
                alerts.append(alert)
            except ValueError as exc:
                await self._reject({"payload": (record.value or b"").decode("utf-8", "replace")}, f"unreadable: {exc}")
        if not alerts:
            return
        try:
            await self.target.send(session, alerts)
        except Rejected as exc:
            if len(alerts) == 1:
                await self._reject(alerts[0], str(exc))
                return
            for alert in alerts:  # one bad alert must not take its batch with it: find it
                await self._send_one(session, alert)
            return
        self.report.delivered += len(alerts)
        self.report.last_delivery_at = time.time()

    async def _send_one(self, session: aiohttp.ClientSession, alert: dict[str, Any]) -> None:
        try:
            await self.target.send(session, [alert])
        except Rejected as exc:
            await self._reject(alert, str(exc))
            return
        self.report.delivered += 1
        self.report.last_delivery_at = time.time()

    async def _reject(self, alert: dict[str, Any], error: str) -> None:
        """Keep what a target refused for good in ``<prefix>notify:rejected``; a Redis failure is a failure."""
        log.error("%s refused an alert for good (%s): %s", self.target.name, error, orjson.dumps(alert).decode())
        try:
            await self.redis.xadd(
                self.keys.notify_rejected,
                {"target": self.target.name, "error": error, "alert": orjson.dumps(alert)},
                maxlen=REJECTED_MAXLEN,
                approximate=True,
            )
        except (redis.RedisError, OSError) as exc:
            raise TargetDown(f"cannot keep a rejected alert in Redis: {exc}") from exc
        self.report.rejected += 1

    def _failed(self, error: str) -> None:
        report, now = self.report, time.time()
        report.failures += 1
        report.last_error = error
        if report.failing_since is None:
            report.failing_since = report.loud_at = now
            log.warning(
                "%s (%s): delivery failed, retrying with backoff; alerts wait in Kafka: %s",
                self.target.name,
                report.url,
                error,
            )
        elif now - report.loud_at >= LOUD_EVERY_S:
            report.loud_at = now
            log.error(
                "%s (%s) down for %.0f s, %d alerts waiting: %s",
                self.target.name,
                report.url,
                now - report.failing_since,
                report.pending,
                error,
            )

    def _recovered(self) -> None:
        if self.report.failing_since is not None:
            log.info("%s delivers again after %.0f s down", self.target.name, time.time() - self.report.failing_since)
            self.report.failing_since = None
        self.backoff.reset()

    async def _wait(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), self.backoff.next())
        except TimeoutError:
            pass

    async def refresh_pending(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        pending = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                pending += max(0, highwater - await consumer.position(tp))
        self.report.pending = pending


def targets_of(settings: Settings) -> list[Target]:
    """Alertmanager (when configured) and every webhook, each with a stable name for its consumer group."""
    found: list[Target] = []
    if settings.alertmanager_url:
        found.append(AlertmanagerTarget("alertmanager", settings.alertmanager_url, settings.notify_resend_s))
    for url in settings.webhook_urls:
        found.append(WebhookTarget(f"webhook-{hashlib.sha1(url.encode()).hexdigest()[:10]}", url))
    return found


async def run_notifier(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Deliver until SIGTERM or SIGINT (or ``stop``); returns the exit code."""
    targets = targets_of(settings)
    if not targets:
        log.error("nothing to notify: set DRIFTLINE_ALERTMANAGER_URL and/or DRIFTLINE_WEBHOOK_URLS")
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client, keys = async_client(settings), RedisKeys(settings.redis_prefix)
    loops = [TargetLoop(t, settings, client, keys) for t in targets]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.notify_timeout_s)) as session:
        for target in targets:
            await target.start(session, client, keys)
        log.info(
            "notify: delivering %s to %s",
            settings.topic_alerts,
            ", ".join(f"{t.name} ({redact(t.url)})" for t in targets),
        )
        tasks = [asyncio.create_task(lp.run(session, stop), name=lp.target.name) for lp in loops]
        tasks += [asyncio.create_task(t.keep_alive(session, stop)) for t in targets]
        tasks.append(asyncio.create_task(_report(loops, client, keys, stop)))
        await asyncio.gather(*tasks)
    await client.aclose()
    return 0


async def _report(loops: list[TargetLoop], client: AsyncClient, keys: RedisKeys, stop: asyncio.Event) -> None:
    while True:
        for lp in loops:
            try:
                await lp.refresh_pending()
            except Exception as exc:  # noqa: BLE001 (the report is informative; never stop for it)
                log.debug("cannot read %s's position: %s", lp.target.name, exc)
        try:
            await client.hset(keys.notify_status, mapping={lp.target.name: lp.report.entry() for lp in loops})
        except (redis.RedisError, OSError) as exc:
            log.warning("cannot report notify state in Redis: %s", exc)
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), REPORT_EVERY_S)
        except TimeoutError:
            pass


__all__ = ["Backoff", "TargetLoop", "TargetReport", "run_notifier", "targets_of"]
