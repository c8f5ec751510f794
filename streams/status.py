"""``driftline status``: a readable table of what Redis holds."""

from __future__ import annotations

import orjson
import redis

from streams.keys import RedisKeys

COLUMNS = ("model", "predictions", "outcomes", "joined", "unmatched", "expired", "invalid", "metric", "status", "alerts")


def status_rows(client: redis.Redis, keys: RedisKeys, model: str | None = None) -> list[dict[str, str]]:
    """One row per model (or just ``model``), read from the model hashes."""
    models = [model] if model else sorted(m.decode() if isinstance(m, bytes) else m for m in client.smembers(keys.models))
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hgetall(keys.model(model_id))
    rows = []
    for model_id, raw in zip(models, pipe.execute()):
        fields = {_text(k): _text(v) for k, v in raw.items()}
        metric = fields.get("metric", "")
        value = fields.get(metric, "")
        rows.append({
            "model": model_id,
            "predictions": fields.get("predictions", "0"),
            "outcomes": fields.get("outcomes", "0"),
            "joined": fields.get("joined", "0"),
            "unmatched": fields.get("unmatched_outcomes", "0"),
            "expired": fields.get("expired", "0"),
            "invalid": fields.get("invalid", "0"),
            "metric": f"{metric} {float(value):.3f}" if value else "-",
            "status": fields.get("status", "unknown") if fields else "not found",
            "alerts": fields.get("open_alerts", "0"),
        })
    return rows


def open_alert_lines(client: redis.Redis, keys: RedisKeys, model: str) -> list[str]:
    lines = []
    for raw in client.hvals(keys.open_alerts(model)):
        alert = orjson.loads(raw)
        where = f" {alert['feature']}" if alert.get("feature") else ""
        if alert.get("segment"):
            where += " [" + ", ".join(f"{k}={v}" for k, v in sorted(alert["segment"].items())) + "]"
        lines.append(f"  [{alert['severity']}] {alert['kind']}{where}: {alert['message']}")
    return sorted(lines)


def worker_line(client: redis.Redis, keys: RedisKeys) -> str:
    workers = [orjson.loads(raw) for raw in client.hvals(keys.workers)]
    owned = sorted(p for w in workers for p in w.get("partitions", []))
    return f"workers: {len(workers)} live, owning partitions {owned}"


def render_status(client: redis.Redis, keys: RedisKeys, model: str | None = None) -> str:
    """The status table, plus the open alerts when one model is asked for."""
    rows = status_rows(client, keys, model)
    if not rows:
        return f"no models yet ({worker_line(client, keys)})"
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    if model:
        lines += ["", "open alerts:"] + (open_alert_lines(client, keys, model) or ["  none"])
    lines += ["", worker_line(client, keys)]
    return "\n".join(lines)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
