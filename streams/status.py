"""``driftline status``: a readable table of what Redis holds, or (``--json``) the same as JSON."""

from __future__ import annotations

from typing import Any

import orjson

from streams.keys import RedisKeys
from streams.redis_client import SyncClient
from streams.registry import read_live_workers

COLUMNS = (
    "model",
    "predictions",
    "outcomes",
    "joined",
    "unmatched",
    "expired",
    "invalid",
    "metric",
    "status",
    "alerts",
)


def status_rows(client: SyncClient, keys: RedisKeys, model: str | None = None) -> list[dict[str, str]]:
    """One row per model (or just ``model``), read from the model hashes."""
    models = (
        [model] if model else sorted(m.decode() if isinstance(m, bytes) else m for m in client.smembers(keys.models))
    )
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hgetall(keys.model(model_id))
    rows = []
    for model_id, raw in zip(models, pipe.execute(), strict=True):
        fields = {_text(k): _text(v) for k, v in raw.items()}
        metric = fields.get("metric", "")
        value = fields.get(metric, "")
        rows.append(
            {
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
            }
        )
    return rows


def open_alert_lines(client: SyncClient, keys: RedisKeys, model: str) -> list[str]:
    lines = []
    for raw in client.hvals(keys.open_alerts(model)):
        alert = orjson.loads(raw)
        where = f" {alert['feature']}" if alert.get("feature") else ""
        if alert.get("segment"):
            where += " [" + ", ".join(f"{k}={v}" for k, v in sorted(alert["segment"].items())) + "]"
        lines.append(f"  [{alert['severity']}] {alert['kind']}{where}: {alert['message']}")
    return sorted(lines)


def worker_line(client: SyncClient, keys: RedisKeys) -> str:
    """How many workers are live (expired entries left out) and the partitions they own."""
    workers = list(read_live_workers(client, keys).values())
    owned = sorted(p for w in workers for p in w.get("partitions", []))
    return f"workers: {len(workers)} live, owning partitions {owned}"


def render_status(client: SyncClient, keys: RedisKeys, model: str | None = None) -> str:
    """The status table, plus the open alerts when one model is asked for."""
    rows = status_rows(client, keys, model)
    if not rows:
        return "\n".join([f"no models yet ({worker_line(client, keys)})", *notify_lines(client, keys)])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    if model:
        lines += ["", "open alerts:"] + (open_alert_lines(client, keys, model) or ["  none"])
    lines += ["", worker_line(client, keys), *notify_lines(client, keys)]
    return "\n".join(lines)


def notify_lines(client: SyncClient, keys: RedisKeys) -> list[str]:
    """One line per ``driftline notify`` target: delivering, or down with how much waits."""
    lines = []
    for name, entry in sorted(_notify_state(client, keys).items()):
        state = "DOWN" if entry.get("failing_since") else "ok"
        line = f"notify {name} ({entry.get('url')}): {state}, delivered {entry.get('delivered', 0)}"
        if entry.get("pending"):
            line += f", {entry['pending']} waiting"
        if entry.get("rejected"):
            line += f", {entry['rejected']} rejected (in {keys.notify_rejected})"
        if entry.get("failing_since"):
            line += f": {entry.get('last_error', '')}"
        lines.append(line)
    return lines


def _notify_state(client: SyncClient, keys: RedisKeys) -> dict[str, dict[str, Any]]:
    return {_text(k): orjson.loads(v) for k, v in client.hgetall(keys.notify_status).items()}


def status_document(client: SyncClient, keys: RedisKeys, model: str | None = None) -> dict[str, Any]:
    """``driftline status --json``: every model's hash (numbers as numbers), the live workers, and with
    ``model`` its open alerts too."""
    models = [model] if model else sorted(_text(m) for m in client.smembers(keys.models))
    pipe = client.pipeline(transaction=False)
    for model_id in models:
        pipe.hgetall(keys.model(model_id))
    found = [{_text(k): typed(_text(v)) for k, v in raw.items()} for raw in pipe.execute()]
    document: dict[str, Any] = {
        "models": [{"model_id": m, **fields} for m, fields in zip(models, found, strict=True) if fields],
        "workers": [{"worker_id": w, **entry} for w, entry in sorted(read_live_workers(client, keys).items())],
        "notify": _notify_state(client, keys),
    }
    if model:
        document["open_alerts"] = sorted(
            (orjson.loads(raw) for raw in client.hvals(keys.open_alerts(model))), key=lambda a: a["alert_id"]
        )
    return document


def typed(value: str) -> str | int | float:
    """A Redis hash value as JSON would have it: integers and finite numbers as numbers.

    >>> typed("12"), typed("0.75"), typed("ok"), typed("nan")
    (12, 0.75, 'ok', 'nan')
    """
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number - number == 0 else value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
