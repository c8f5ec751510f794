"""``driftline report MODEL --html FILE``: one self-contained page to attach to a ticket, or ``--json`` its data.

The report is the dashboard's model page (:mod:`streams.web_dashboard`) with
its data embedded: the model's state, features and distributions, its history,
its open alerts with their evidence and its recent alerts. Style sheet and
scripts are inlined and a Content-Security-Policy forbids every request: the
file opens anywhere, offline, and stays as it was when it was written. It is
read from Redis directly, like ``driftline status``.
"""

from __future__ import annotations

import html
import time
from typing import Any

import orjson

from detectors import rfc3339
from streams.api import MAX_RECENT
from streams.history import HistoryPolicy
from streams.history_read import HistoryQuery, parse_distributions, parse_history, queue_distributions, queue_history
from streams.keys import RedisKeys
from streams.redis_client import SyncClient
from streams.redis_values import alert_of, as_text, json_values, typed_hash
from streams.web_dashboard import asset

RECENT_ALERTS = 200
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def recent_alerts(
    client: SyncClient, keys: RedisKeys, model_id: str, limit: int = RECENT_ALERTS
) -> list[dict[str, Any]]:
    """The model's newest alerts in the alerts stream, newest first."""
    found: list[dict[str, Any]] = []
    entries: Any = client.xrevrange(keys.alerts_stream, count=MAX_RECENT * 10)
    for _, fields in entries:
        alert = alert_of(fields)
        if alert["model_id"] == model_id:
            found.append(alert)
            if len(found) >= limit:
                break
    return found


def report_document(
    client: SyncClient, keys: RedisKeys, model_id: str, policy: HistoryPolicy, now: float | None = None
) -> dict[str, Any] | None:
    """Everything the report shows, as data; None if Redis knows no such model."""
    query = HistoryQuery(points=policy.max_points)
    pipe = client.pipeline(transaction=False)
    for key in (keys.model(model_id), keys.features(model_id), keys.segments(model_id), keys.open_alerts(model_id)):
        pipe.hgetall(key)
    queue_distributions(pipe, keys, model_id)
    queue_history(pipe, keys, model_id, query)
    summary, features, segments, alerts, shown, *history = pipe.execute()
    if not summary:
        return None
    return {
        "generated_at": rfc3339(time.time() if now is None else now),
        "model": {**typed_hash(summary), "model_id": model_id},
        "features": json_values(features),
        "segments": [entry for _, entry in sorted(json_values(segments).items())],
        "open_alerts": sorted(json_values(alerts).values(), key=lambda a: a["detected_at"]),
        "distributions": parse_distributions(shown),
        "history": parse_history(history, model_id, query, policy),
        "recent_alerts": recent_alerts(client, keys, model_id),
    }


def _script_json(document: dict[str, Any]) -> str:
    """JSON that can sit inside a ``<script>`` element ("</" never appears in it)."""
    return orjson.dumps(document).decode().replace("</", "<\\/")


def render_html(document: dict[str, Any]) -> str:
    """The report page: the dashboard's model page, its assets inlined and its data embedded."""
    model_id = html.escape(as_text(document["model"]["model_id"]))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>driftline report: {model_id}</title>
<style>{asset("dashboard.css")}</style>
</head>
<body>
<header><span class="brand">driftline report</span><span id="where"></span><span id="live" class="live"></span></header>
<div class="layout">
<main id="main"></main>
<aside><h2>Open and recent alerts</h2><ul id="alert-list" class="alerts"></ul></aside>
</div>
<p class="report-note">Written by <code>driftline report</code>; it needs no network.
Times on the charts are event times (UTC).</p>
<script id="driftline-report" type="application/json">{_script_json(document)}</script>
<script>{asset("charts.js")}</script>
<script>{asset("dashboard.js")}</script>
</body>
</html>
"""


__all__ = ["recent_alerts", "render_html", "report_document"]
