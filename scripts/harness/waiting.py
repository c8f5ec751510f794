"""Waiting on Redis: the models' counts and hashes, and waiting until they are exact (with :func:`wait_for`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import redis

from streams.keys import RedisKeys
from streams.launch import wait_for


def model_counts(
    client: redis.Redis,
    keys: RedisKeys,
    models: Iterable[str],
    fields: tuple[str, ...] = ("predictions", "outcomes", "joined"),
) -> dict[str, tuple[int, ...]]:
    """Each model's counts from its Redis hash (0 where absent), in one round trip."""
    models = list(models)
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hmget(keys.model(model_id), *fields)
    return {m: tuple(int(v or 0) for v in values) for m, values in zip(models, pipe.execute(), strict=True)}


def model_hashes(client: redis.Redis, keys: RedisKeys, models: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each model's whole Redis hash, as text, in one round trip."""
    models = list(models)
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hgetall(keys.model(model_id))
    return {m: {_text(k): _text(v) for k, v in found.items()} for m, found in zip(models, pipe.execute(), strict=True)}


def wait_for_counts(
    client: redis.Redis,
    keys: RedisKeys,
    want: Mapping[str, Mapping[str, int]],
    timeout_s: float,
    *,
    stall_s: float | None = 60.0,
    what: str = "counts in Redis",
) -> dict[str, dict[str, str]]:
    """Wait until every model's hash holds exactly the wanted counts; return the models' whole hashes.

    ``want`` maps a model to {field: value}; an absent field matches nothing.
    Fails (:class:`TimeoutError`, with the last counts seen) after ``timeout_s``,
    or when the watched counts have not moved for ``stall_s``.
    """
    seen: dict[str, dict[str, str]] = {}

    def watched() -> dict[str, dict[str, str | None]]:
        return {m: {f: seen.get(m, {}).get(f) for f in fields} for m, fields in want.items()}

    def done() -> dict[str, dict[str, str]] | None:
        seen.update(model_hashes(client, keys, want))
        matched = all(seen[m].get(f) == str(v) for m, fields in want.items() for f, v in fields.items())
        return dict(seen) if matched else None

    return wait_for(done, timeout_s, what, every_s=0.2, progress=watched, stall_s=stall_s)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
