"""The live workers: ``<prefix>workers``, whose entries expire when a worker stops announcing itself.

Each worker writes its entry (JSON: host, pid, partitions, counters) into the
hash ``<prefix>workers`` every few seconds, and its expiry time into a sorted
set beside it (``{<prefix>workers}:expiry``, in the same Redis Cluster slot).
An entry lives ``ttl_s`` (the consumer group's session timeout) after its last
announcement, measured on the Redis server's clock, so the hosts' clocks do
not matter. Readers list only entries whose expiry is ahead; every
announcement also deletes the expired ones. A SIGKILLed worker therefore
stops counting within its session timeout, as it stops counting in the
consumer group, and the hash never fills with the dead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import orjson
import redis

from detectors import rfc3339
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient, SyncClient, same_slot_key

log = logging.getLogger(__name__)

# KEYS: the hash, the expiry set. ARGV: worker id, entry, ttl (0: leave). Returns the expired workers removed.
_ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, worker in ipairs(dead) do
  redis.call('HDEL', KEYS[1], worker)
  redis.call('ZREM', KEYS[2], worker)
end
return #dead
"""

# KEYS: the hash, the expiry set. Returns alternating worker id and entry, for the workers not expired.
_LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
  local entry = redis.call('HGET', KEYS[1], worker)
  if entry then out[#out + 1] = worker; out[#out + 1] = entry end
end
return out
"""


def expiry_key(keys: RedisKeys) -> str:
    return same_slot_key(keys.workers, ":expiry")


class WorkerRegistry:
    """This worker's entry in ``<prefix>workers``: host, pid, the partitions it owns, its counters."""

    def __init__(self, client: AsyncClient, keys: RedisKeys, ttl_s: float) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = time.time()
        self.partitions: list[int] = []
        self._announce = client.register_script(_ANNOUNCE)

    async def announce(
        self, partitions: list[int] | None, overflow_events: int = 0, stats: dict[str, float] | None = None
    ) -> None:
        """Refresh this worker's entry and its expiry; ``partitions`` is given after each rebalance."""
        if partitions is not None:
            self.partitions = partitions
        entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "partitions": self.partitions,
            "overflow_events": overflow_events,
            "started_at": rfc3339(self.started_at),
            "last_seen": rfc3339(time.time()),
            "ttl_s": self.ttl_s,
            **(stats or {}),
        }
        await self._run(orjson.dumps(entry), self.ttl_s)

    async def leave(self) -> None:
        await self._run(b"", 0)

    async def _run(self, entry: bytes, ttl_s: float) -> None:
        try:
            removed = await self._announce(
                keys=[self.keys.workers, expiry_key(self.keys)], args=[self.worker_id, entry, ttl_s]
            )
        except (redis.RedisError, OSError) as exc:  # the registry is informative: never stop work for it
            log.warning("cannot announce worker in Redis: %s", exc)
            return
        if removed:
            log.info("worker registry: %d expired entries removed", removed)


def _entries(found: list[Any]) -> dict[str, dict[str, Any]]:
    pairs = zip(found[::2], found[1::2], strict=True)
    return {(w.decode() if isinstance(w, bytes) else w): orjson.loads(e) for w, e in pairs}


def read_live_workers(client: SyncClient, keys: RedisKeys) -> dict[str, dict[str, Any]]:
    """The live workers' entries by worker id (``host:pid``); the expired ones are left out."""
    script = client.register_script(_LIVE)
    return _entries(script(keys=[keys.workers, expiry_key(keys)]))


async def read_live_workers_async(client: AsyncClient, keys: RedisKeys) -> dict[str, dict[str, Any]]:
    """The same as :func:`read_live_workers`, for asyncio clients."""
    script = client.register_script(_LIVE)
    return _entries(await script(keys=[keys.workers, expiry_key(keys)]))


__all__ = ["WorkerRegistry", "read_live_workers", "read_live_workers_async"]
