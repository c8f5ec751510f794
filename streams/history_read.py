"""Reading a model's history (:mod:`streams.history`) back: for the API, the dashboard and reports.

The commands are queued on a pipeline the caller sends (sync or async), and
the answers parsed here, so the JSON API and ``driftline report`` read alike.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from streams.history import FEATURE_FIELDS, HistoryPolicy
from streams.keys import RedisKeys
from streams.redis_values import json_values

DEFAULT_POINTS = 1440  # a day at one point a minute
MAX_SPARKLINE_MODELS = 200


def _points(entries: Any) -> list[dict[str, Any]]:
    """Stream entries (newest first) as points, oldest first."""
    found = []
    for _, fields in reversed(entries or []):
        raw = fields.get(b"p") if b"p" in fields else fields.get("p")
        if raw is not None:
            found.append(orjson.loads(raw))
    return found


def latest_per_interval(points: list[dict[str, Any]], policy: HistoryPolicy) -> list[dict[str, Any]]:
    """One point per interval (the one written last: a restarted worker writes its interval again), by time,
    and none older than the retention before the newest.

    >>> policy = HistoryPolicy(60.0, 600.0, 10)
    >>> pts = [{"t": 0, "v": 1}, {"t": 61, "v": 2}, {"t": 30, "v": 3}, {"t": 125, "v": 4}]
    >>> [p["v"] for p in latest_per_interval(pts, policy)]
    [3, 2, 4]
    """
    by_bucket: dict[int, dict[str, Any]] = {}
    for point in points:
        by_bucket[policy.bucket(point["t"])] = point
    ordered = [by_bucket[b] for b in sorted(by_bucket)]
    if not ordered:
        return ordered
    oldest = ordered[-1]["t"] - policy.retention_s
    return [p for p in ordered if p["t"] >= oldest]


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """What to read: the newest ``points`` points, and the features' series for ``features``
    (None: every feature; empty: none)."""

    points: int = DEFAULT_POINTS
    features: Collection[str] | None = None

    @classmethod
    def parse(cls, points: str | None, features: str | None, cap: int) -> HistoryQuery:
        """From query parameters: ``points`` (clamped to 1..cap) and ``features`` (``a,b``; ``*`` all; empty none).

        >>> HistoryQuery.parse("50", "income,age", 100)
        HistoryQuery(points=50, features=('income', 'age'))
        >>> HistoryQuery.parse("x", None, 100)
        HistoryQuery(points=100, features=None)
        """
        try:
            wanted = int(points) if points is not None else DEFAULT_POINTS
        except ValueError:
            wanted = DEFAULT_POINTS
        chosen: tuple[str, ...] | None
        if features is None or features == "*":
            chosen = None
        else:
            chosen = tuple(f for f in features.split(",") if f)
        return cls(max(1, min(wanted, cap)), chosen)


def feature_stats(stored: list[float | None]) -> dict[str, float]:
    """A feature's stored values by name.

    >>> feature_stats([1.5, 0.2, None, None, 30.0])
    {'score': 1.5, 'psi': 0.2, 'chi2': 30.0}
    """
    return {name: v for name, v in zip(FEATURE_FIELDS, stored, strict=False) if v is not None}


def queue_history(pipe: Any, keys: RedisKeys, model_id: str, query: HistoryQuery) -> None:
    """Queue the reads of one model's history (two commands, or one without features)."""
    pipe.xrevrange(keys.history(model_id), count=query.points)
    if query.features is None or query.features:
        pipe.xrevrange(keys.feature_history(model_id), count=query.points)


def parse_history(answers: list[Any], model_id: str, query: HistoryQuery, policy: HistoryPolicy) -> dict[str, Any]:
    """The answers of :func:`queue_history` as the API's history document."""
    points = latest_per_interval(_points(answers[0]), policy)
    series: dict[str, list[dict[str, Any]]] = {}
    if len(answers) > 1:
        wanted = None if query.features is None else set(query.features)
        for point in latest_per_interval(_points(answers[1]), policy):
            for name, stats in point["features"].items():
                if wanted is None or name in wanted:
                    series.setdefault(name, []).append({"t": point["t"], **feature_stats(stats)})
    return {
        "model_id": model_id,
        "interval_s": policy.interval_s,
        "retention_s": policy.retention_s,
        "points": points,
        "features": dict(sorted(series.items())),
    }


def queue_distributions(pipe: Any, keys: RedisKeys, model_id: str) -> None:
    pipe.hgetall(keys.distributions(model_id))


def parse_distributions(raw: dict[Any, Any]) -> dict[str, Any]:
    return json_values(dict(sorted(raw.items())))


__all__ = [
    "HistoryQuery",
    "latest_per_interval",
    "parse_distributions",
    "parse_history",
    "queue_distributions",
    "queue_history",
]
