"""What ``driftline notify`` sends: an alert as Alertmanager v2 wants it, and as a Slack-compatible webhook body.

Alertmanager identifies an alert by its labels. driftline's are ``alertname``
(``driftline_<kind>``), ``model_id``, ``kind``, ``feature``, ``segment``
(canonical JSON, keys sorted), ``severity`` and ``alert_id`` (one episode: its
firing and its resolve carry the same, and two conditions on one feature, say
``missing_rate`` and ``out_of_range``, stay two alerts). Alertmanager drops
empty labels, so an alert without a feature or segment has no such label, and
a matcher ``feature=""`` selects it, as in Prometheus. A firing alert starts at
its ``detected_at`` and ends, unless sent again, four resend intervals later
(Prometheus does the same); a resolved one ends at its ``detected_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def segment_label(segment: dict[str, str] | None) -> str:
    """``{"region": "eu"}`` as ``{"region":"eu"}``; "" for none."""
    return orjson.dumps(segment, option=orjson.OPT_SORT_KEYS).decode() if segment else ""


def alertmanager_alert(alert: dict[str, Any], starts_at: float | None, now: float, hold_s: float) -> dict[str, Any]:
    """One postable alert of Alertmanager's v2 API.

    ``starts_at`` is when the episode fired, if known; ``hold_s`` how long a
    firing alert stays active without being sent again.

    >>> a = {"alert_id": "a1", "model_id": "churn", "kind": "data_drift", "status": "firing", "severity": "warning",
    ...      "feature": "age", "segment": None, "detector": "cusum", "statistic": 9.0, "threshold": 5.0,
    ...      "message": "age moved", "detected_at": "2026-11-26T18:50:16.170Z", "model_version": "v1"}
    >>> posted = alertmanager_alert(a, None, now=1796150000.0, hold_s=240.0)
    >>> posted["labels"]["alertname"], posted["labels"]["feature"], "segment" in posted["labels"], posted["endsAt"]
    ('driftline_data_drift', 'age', False, '2026-12-01T18:37:20.000Z')
    """
    detected = parse_time(alert["detected_at"])
    labels = {
        "alertname": f"driftline_{alert['kind']}",
        "model_id": alert["model_id"],
        "kind": alert["kind"],
        "feature": alert.get("feature") or "",
        "segment": segment_label(alert.get("segment")),
        "severity": alert["severity"],
        "alert_id": alert["alert_id"],
    }
    firing = alert["status"] == "firing"
    start = min(starts_at, detected) if starts_at is not None else detected
    return {
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {
            "summary": alert.get("message", ""),
            "detector": str(alert.get("detector", "")),
            "statistic": str(alert.get("statistic", "")),
            "threshold": str(alert.get("threshold", "")),
            "model_version": str(alert.get("model_version", "")),
        },
        "startsAt": rfc3339(start),
        "endsAt": rfc3339(max(now, detected) + hold_s if firing else detected),
    }


def slack_body(alert: dict[str, Any]) -> dict[str, Any]:
    """A JSON body that Slack's incoming webhooks accept as is (``text`` and ``blocks``).

    The whole alert rides along under ``driftline`` for any other webhook
    consumer; Slack reads only the fields it knows.

    >>> body = slack_body({"alert_id": "a1", "model_id": "churn", "kind": "performance", "status": "resolved",
    ...                    "severity": "critical", "feature": None, "segment": {"region": "eu"},
    ...                    "detector": "rolling_accuracy", "message": "accuracy recovered", "statistic": 0.9,
    ...                    "threshold": 0.8, "detected_at": "2026-11-26T18:50:16.170Z"})
    >>> body["text"]
    'RESOLVED [critical] churn performance {"region":"eu"}: accuracy recovered'
    """
    where = " ".join(x for x in (alert.get("feature") or "", segment_label(alert.get("segment"))) if x)
    head = f"{alert['status'].upper()} [{alert['severity']}] {alert['model_id']} {alert['kind']}"
    text = f"{head}{' ' + where if where else ''}: {alert.get('message', '')}"
    emoji = ":white_check_mark:" if alert["status"] == "resolved" else SEVERITY_EMOJI.get(alert["severity"], "")
    details = (
        f"detector `{alert.get('detector')}` · statistic {alert.get('statistic')} · threshold "
        f"{alert.get('threshold')} · alert `{alert['alert_id']}` · {alert.get('detected_at')}"
    )
    return {
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{emoji} *{_escape(head)}*"
                    f"{' `' + _escape(where) + '`' if where else ''}\n"
                    f"{_escape(alert.get('message', ''))}",
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(details)}]},
        ],
        "driftline": alert,
    }


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["alertmanager_alert", "parse_time", "rfc3339", "segment_label", "slack_body"]
