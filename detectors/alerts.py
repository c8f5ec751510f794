"""Alert values and their lifecycle: one ``firing`` and one ``resolved`` per episode.

A detector says, each time it is asked, whether its condition holds now (an
:class:`Evidence`) or not (``None``). :class:`AlertBook` turns that level into
edges: the first evidence opens an episode and yields a ``firing`` alert, and
the first ``None`` after it yields the matching ``resolved`` alert with the
same ``alert_id``. Hysteresis lives in the detectors, which keep reporting
evidence until their clear condition is met.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

KINDS = ("data_drift", "prediction_drift", "concept_drift", "performance", "data_quality")


def rfc3339(epoch_s: float) -> str:
    """Format Unix seconds as an RFC 3339 UTC string with milliseconds.

    >>> rfc3339(0)
    '1970-01-01T00:00:00.000Z'
    """
    moment = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a detector measured when its condition held.

    >>> Evidence("data_drift", "age", "adwin", 0.9, 0.25, 120, 10.0, 20.0, "warning", "age moved").kind
    'data_drift'
    """

    kind: str
    feature: str | None
    detector: str
    statistic: float
    threshold: float
    n: int
    window_start: float
    window_end: float
    severity: str
    message: str
    top_features: tuple[tuple[str, float], ...] = ()  # data drift: the model's most drifting features, scored


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as published on the alerts topic (contract v1).

    >>> e = Evidence("performance", None, "accuracy_drop", 0.2, 0.1, 500, 0.0, 60.0, "critical", "accuracy fell")
    >>> a = Alert.from_evidence("a1", "churn", "v3", "firing", e, detected_at=60.0)
    >>> a.to_dict()["status"], a.to_dict()["window_end"]
    ('firing', '1970-01-01T00:01:00.000Z')
    """

    alert_id: str
    model_id: str
    model_version: str
    status: str
    evidence: Evidence
    detected_at: float
    segment: dict[str, str] | None = None

    @classmethod
    def from_evidence(
        cls, alert_id: str, model_id: str, model_version: str, status: str, evidence: Evidence, detected_at: float
    ) -> Alert:
        return cls(alert_id, model_id, model_version, status, evidence, detected_at)

    def to_dict(self) -> dict[str, Any]:
        e = self.evidence
        return {
            "alert_id": self.alert_id,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "kind": e.kind,
            "status": self.status,
            "severity": e.severity,
            "feature": e.feature,
            "segment": self.segment,
            "detector": e.detector,
            "statistic": e.statistic,
            "threshold": e.threshold,
            "n": e.n,
            "window_start": rfc3339(e.window_start),
            "window_end": rfc3339(e.window_end),
            "message": e.message,
            "detected_at": rfc3339(self.detected_at),
            **({"top_features": [{"feature": f, "score": v} for f, v in e.top_features]} if e.kind == "data_drift" else {}),
        }


def segment_key(segment: dict[str, str] | None) -> str | None:
    """A segment's identity: its full label set as canonical JSON (keys sorted, no spaces).

    Empty or absent labels are no segment.

    >>> segment_key({"region": "eu", "channel": "web"})
    '{"channel":"web","region":"eu"}'
    >>> segment_key({}) is None
    True
    """
    if not segment:
        return None
    return json.dumps(segment, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def alert_id_for(
    model_id: str, kind: str, feature: str | None, detector: str, episode: int,
    segment: dict[str, str] | None = None,
) -> str:
    """A stable id for one episode: the same inputs give the same id after a replay.

    A segment's alerts differ from the model's own; without a segment the id is
    the one earlier releases gave.

    >>> alert_id_for("churn", "data_drift", "age", "adwin", 1) == alert_id_for("churn", "data_drift", "age", "adwin", 1)
    True
    >>> alert_id_for("churn", "data_drift", "age", "adwin", 1, {"region": "eu"}) == alert_id_for(
    ...     "churn", "data_drift", "age", "adwin", 1)
    False
    """
    text = f"{model_id}\x1f{kind}\x1f{feature or ''}\x1f{detector}\x1f{episode}"
    key = segment_key(segment)
    if key is not None:
        text += f"\x1f{key}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


AlertKey = tuple[str, "str | None", str]  # kind, feature, detector


@dataclass
class AlertBook:
    """Open episodes of one model (or of one of its segments), keyed by (kind, feature, detector).

    Detectors report a measurement each time and whether their condition holds.
    After an episode resolves, the same key cannot fire again for ``cooldown_s``
    seconds (of the ``now`` passed in), so a condition hovering at its threshold
    does not page anyone twice. A book per segment (``segment``) makes the
    cooldown per (model, kind, feature, detector, segment); its alerts carry the
    segment and ids of their own.

    >>> book = AlertBook("churn", cooldown_s=60.0)
    >>> e = Evidence("data_drift", "age", "adwin", 0.9, 0.25, 120, 10.0, 20.0, "warning", "age moved")
    >>> [a.status for a in book.observe(e, True, "v1", now=21.0)]
    ['firing']
    >>> book.observe(e, True, "v1", now=22.0)  # still the same episode
    []
    >>> [a.status for a in book.observe(e, False, "v1", now=30.0)]
    ['resolved']
    >>> book.observe(e, True, "v1", now=40.0)  # cooling down
    []
    >>> [a.status for a in book.observe(e, True, "v1", now=95.0)]
    ['firing']
    """

    model_id: str
    open: dict[AlertKey, Alert] = field(default_factory=dict)
    episodes: dict[AlertKey, int] = field(default_factory=dict)
    cooldown_s: float = 0.0
    resolved_at: dict[AlertKey, float] = field(default_factory=dict)
    segment: dict[str, str] | None = None

    def observe(
        self, evidence: Evidence, active: bool, model_version: str, now: float, key: AlertKey | None = None
    ) -> list[Alert]:
        """Turn one measurement into alert edges; ``key`` defaults to the evidence's own."""
        key = key or (evidence.kind, evidence.feature, evidence.detector)
        current = self.open.get(key)
        if active and current is None:
            if now - self.resolved_at.get(key, -math.inf) < self.cooldown_s:
                return []
            episode = self.episodes.get(key, 0) + 1
            self.episodes[key] = episode
            alert_id = alert_id_for(self.model_id, *key, episode, segment=self.segment)
            alert = Alert(alert_id, self.model_id, model_version, "firing", evidence, now, self.segment)
            self.open[key] = alert
            return [alert]
        if not active and current is not None:
            del self.open[key]
            self.resolved_at[key] = now
            cleared = replace(evidence, severity=current.evidence.severity)
            return [replace(current, status="resolved", evidence=cleared, detected_at=now)]
        return []

    def status(self, feature: str | None = None) -> str:
        """``critical`` if an open alert is critical, ``warning`` if any is open, else ``ok``.

        With ``feature``, only the alerts on that feature count.
        """
        severities = {a.evidence.severity for key, a in self.open.items() if feature is None or key[1] == feature}
        return "critical" if "critical" in severities else ("warning" if severities else "ok")
