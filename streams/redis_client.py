"""Every Redis client driftline makes (workers, CLI, notify, API): one server, a Cluster or Sentinel.

The deployment is chosen by ``DRIFTLINE_REDIS_MODE``, or (``auto``, the
default) by the URL's scheme:

    redis://[user:password@]host:6379/0            one server (rediss:// for TLS)
    redis+cluster://[user:password@]h1:7000,h2:7001  a Redis Cluster: any of its nodes (rediss+cluster:// for TLS)
    redis+sentinel://[user:password@]s1:26379,s2:26379/mymaster/0   the master a Sentinel group names

Query parameters (``?ssl_ca_certs=/ca.pem&socket_timeout=5``) are redis-py's
URL options for the data connections in every mode. The URL's credentials are
the data servers'; sentinels that need a password of their own take
``DRIFTLINE_REDIS_SENTINEL_PASSWORD``.

Cluster needs no more from the callers: every key of one model shares the hash
slot of ``{<model_id>}``, a consumer group's checkpoints share the slot of
``{<group>/<topic>}`` (their save is one Lua script over all of them), and the
worker registry's two keys share the slot of ``<prefix>workers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from streams.errors import ConfigurationError
from streams.settings import Settings

Mode = Literal["standalone", "cluster", "sentinel"]
SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is, parsed from a URL.

    >>> t = RedisTarget.parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/?socket_timeout=5")
    >>> t.mode, t.nodes, t.password, t.query
    ('cluster', (('10.0.0.1', 7000), ('10.0.0.2', 7001)), 'pw', (('socket_timeout', '5'),))
    >>> t = RedisTarget.parse("redis+sentinel://s1:26379,s2/prod-cache/2")
    >>> t.mode, t.nodes, t.master, t.db
    ('sentinel', (('s1', 26379), ('s2', 26379)), 'prod-cache', 2)
    >>> RedisTarget.parse("redis://cache:6380/1", mode="cluster").node_url("cache", 6380)
    'redis://cache:6380/?'
    """

    mode: Mode
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    db: int = 0
    master: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str, mode: Mode | Literal["auto"] = "auto", sentinel_master: str = "mymaster") -> RedisTarget:
        scheme, sep, rest = url.partition("://")
        base, _, variant = scheme.partition("+")
        if not sep or base not in ("redis", "rediss") or variant not in ("", "cluster", "sentinel"):
            raise ConfigurationError(
                f"not a Redis URL: {_redacted(url)!r} (redis://, rediss://, redis+cluster://, redis+sentinel://)"
            )
        # variant is "", "cluster" or "sentinel" (checked above)
        chosen: Mode = cast(Mode, variant or "standalone") if mode == "auto" else mode
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, _, hosts = netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        default_port = 26379 if chosen == "sentinel" else 6379
        nodes = tuple(_host_port(h, default_port) for h in hosts.split(",") if h)
        if not nodes:
            raise ConfigurationError(f"no Redis host in {_redacted(url)!r}")
        parts = [p for p in path.split("/") if p]
        master = sentinel_master
        if chosen == "sentinel" and parts and not parts[0].isdigit():
            master = unquote(parts.pop(0))
        if len(parts) > 1 or (parts and not parts[0].isdigit()):
            raise ConfigurationError(f"cannot read the database number in {_redacted(url)!r}")
        return cls(
            chosen,
            base == "rediss",
            nodes,
            unquote(username) or None,
            unquote(password) or None,
            int(parts[0]) if parts else 0,
            master if chosen == "sentinel" else None,
            tuple(parse_qsl(query)),
        )

    def node_url(self, host: str, port: int, db: bool = False) -> str:
        """A plain redis-py URL for one node, with the credentials and options."""
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}:{self.password or ''}@"
        options = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{'rediss' if self.tls else 'redis'}://{auth}{host}:{port}/{self.db if db else ''}?{options}"


def _host_port(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:6379
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
        return host, int(port) if port else default
    host, sep, port = text.partition(":")
    return (host, int(port)) if sep else (text, default)


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


def target_of(settings: Settings) -> RedisTarget:
    return RedisTarget.parse(settings.redis_url, settings.redis_mode, settings.redis_sentinel_master)


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    secret = settings.redis_sentinel_password
    return {"password": secret.get_secret_value()} if secret is not None else {}


def sync_client(settings: Settings, decode_responses: bool = False) -> SyncClient:
    """A blocking client (the CLI, notify's start-up, tests)."""
    t = target_of(settings)
    if t.mode == "standalone":
        host, port = t.nodes[0]
        return redis.Redis.from_url(t.node_url(host, port, db=True), decode_responses=decode_responses)
    if t.mode == "cluster":
        (host, port), *others = t.nodes
        return redis.cluster.RedisCluster.from_url(
            t.node_url(host, port),
            decode_responses=decode_responses,
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in others] or None,  # type: ignore[no-untyped-call]
        )
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(t.nodes), sentinel_kwargs=_sentinel_kwargs(settings), **_data_kwargs(t, decode_responses)
    )
    assert t.master is not None
    master: redis.Redis = sentinel.master_for(t.master)  # type: ignore[no-untyped-call]
    return master


def async_client(settings: Settings, decode_responses: bool = False) -> AsyncClient:
    """An asyncio client (the worker, its web views, notify)."""
    t = target_of(settings)
    if t.mode == "standalone":
        host, port = t.nodes[0]
        return redis.asyncio.Redis.from_url(t.node_url(host, port, db=True), decode_responses=decode_responses)
    if t.mode == "cluster":
        (host, port), *others = t.nodes
        return redis.asyncio.cluster.RedisCluster.from_url(
            t.node_url(host, port),
            decode_responses=decode_responses,
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in others] or None,
        )
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(t.nodes), sentinel_kwargs=_sentinel_kwargs(settings), **_data_kwargs(t, decode_responses)
    )
    assert t.master is not None
    master: redis.asyncio.Redis = sentinel.master_for(t.master)
    return master


async def connect(client: AsyncClient) -> None:
    """Discover a Cluster's nodes now, on the running loop; a no-op for the other deployments.

    redis-py queues each command of a cluster transaction (``pipeline(transaction=True)``,
    the checkpoint load) through ``asyncio.run`` on a thread of its own; a client
    not yet initialized would open its node connections on that short-lived loop.
    """
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.initialize()


def _data_kwargs(t: RedisTarget, decode_responses: bool) -> dict[str, Any]:
    """Connection options of the master a sentinel names: credentials, database, TLS, URL options."""
    kwargs: dict[str, Any] = {
        "db": t.db,
        "username": t.username,
        "password": t.password,
        "decode_responses": decode_responses,
    }
    if t.tls:
        kwargs["ssl"] = True
    for key, value in t.query:
        kwargs[key] = _option(value)
    return kwargs


def _option(value: str) -> Any:
    """A URL option's value as redis-py's URL parser would give it: numbers and booleans typed."""
    lowered = value.lower()
    if lowered in ("true", "false", "yes", "no"):
        return lowered in ("true", "yes")
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        return value


def same_slot_key(key: str, suffix: str) -> str:
    """A key in the same Redis Cluster hash slot as ``key``.

    >>> same_slot_key("driftline:workers", ":expiry")
    '{driftline:workers}:expiry'
    >>> same_slot_key("t{x}:workers", ":expiry")
    't{x}:workers:expiry'
    """
    start = key.find("{")
    if start >= 0 and key.find("}", start + 1) > start + 1:
        return key + suffix
    return "{" + key + "}" + suffix


__all__ = ["AsyncClient", "RedisTarget", "SyncClient", "async_client", "connect", "same_slot_key", "sync_client"]
