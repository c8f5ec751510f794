"""Alert values and their lifecycle: one ``firing`` and one ``resolved`` per episode.

Detectors report where their condition starts and stops holding
(:class:`~detectors.base.Change`, with an :class:`Evidence`). :class:`AlertBook`
turns those changes, in event-time order, into alerts: a change to active opens
an episode (``firing``), the change back closes it (``resolved``, same
``alert_id``). Hysteresis lives in the detectors; cooldowns, counted in event
time, live in the book.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

KINDS = ("data_drift", "prediction_drift", "concept_drift", "performance", "data_quality")
# What :meth:`AlertBook.status` returns, best to worst: ``max(statuses, key=STATUS_RANK.__getitem__)`` is the worst.
STATUS_RANK = {"ok": 0, "warning": 1, "critical": 2}


def rfc3339(epoch_s: float) -> str:
    """Format Unix seconds as an RFC 3339 UTC string with milliseconds.

    >>> rfc3339(0)
    '1970-01-01T00:00:00.000Z'
    """
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
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
    direction: int = 0  # +1 / -1 for a shift up or down (a CUSUM's), 0 when it has none


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
    key: str = ""  # the book's key (kind, feature, detector) as text: not part of the published alert

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
            **(
                {"top_features": [{"feature": f, "score": v} for f, v in e.top_features]}
                if e.kind == "data_drift"
                else {}
            ),
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
    model_id: str,
    kind: str,
    feature: str | None,
    detector: str,
    episode: int,
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


def key_text(key: AlertKey) -> str:
    r"""An alert key as one string (for dictionaries that checkpoint): kind, feature, detector.

    >>> key_text(("data_drift", "age", "drift")), key_text(("performance", None, "cbpe"))
    ('data_drift\x1fage\x1fdrift', 'performance\x1f\x00\x1fcbpe')
    """
    kind, feature, detector = key
    return f"{kind}\x1f{NO_FEATURE if feature is None else feature}\x1f{detector}"


NO_FEATURE = "\x00"  # the feature of a key about the whole model


def key_from_text(text: str) -> AlertKey:
    """The key that :func:`key_text` wrote.

    >>> key_from_text(key_text(("performance", None, "cbpe")))
    ('performance', None, 'cbpe')
    """
    kind, feature, detector = text.split("\x1f")
    return kind, (None if feature == NO_FEATURE else feature), detector


@dataclass
class AlertBook:
    """Open episodes of one model (or of one of its segments), keyed by (kind, feature, detector).

    Detectors report *changes* of their condition, each at an event time
    (:class:`~detectors.base.Change`). The first change to active opens an
    episode and yields a ``firing`` alert; the change back yields the matching
    ``resolved`` alert with the same ``alert_id``. After a resolve, the same key
    in the same direction cannot fire again for ``cooldown_s`` seconds of event
    time (so a replayed backlog raises the alerts live traffic would): the
    condition *waits*, and fires when the cooldown ends if it still holds. A
    shift the other way (evidence of the opposite ``direction``) is another
    change, and fires at once. A caller may also hold a condition back
    (``held``: a segment whose model alerts on the same thing); it waits too,
    until :meth:`release`. A book per segment (``segment``) makes every key per
    segment; its alerts carry the segment and ids of their own.

    >>> book = AlertBook("churn", cooldown_s=60.0)
    >>> e = Evidence("data_drift", "age", "cusum", 9.0, 5.0, 120, 10.0, 20.0, "warning", "age moved", direction=1)
    >>> [a.status for a in book.change(e, True, at=21.0, model_version="v1", detected_at=1.0)]
    ['firing']
    >>> [a.status for a in book.change(e, False, at=30.0, model_version="v1", detected_at=2.0)]
    ['resolved']
    >>> book.change(e, True, at=40.0, model_version="v1", detected_at=3.0), book.due(("data_drift", "age", "cusum"))
    ([], 90.0)
    >>> [a.status for a in book.release(("data_drift", "age", "cusum"), at=90.0, model_version="v1", detected_at=4.0)]
    ['firing']
    """

    model_id: str
    open: dict[str, Alert] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)
    cooldown_s: float = 0.0
    resolved: dict[str, tuple[float, int]] = field(default_factory=dict)  # event time and direction of the last resolve
    waiting: dict[str, Evidence] = field(default_factory=dict)  # conditions that hold, held back or cooling down
    segment: dict[str, str] | None = None

    def change(
        self,
        evidence: Evidence,
        active: bool,
        at: float,
        model_version: str,
        detected_at: float,
        key: AlertKey | None = None,
        held: bool = False,
    ) -> list[Alert]:
        """One change of a detector's condition at event time ``at``; the alert edges it makes."""
        key = key or (evidence.kind, evidence.feature, evidence.detector)
        text = key_text(key)
        if not active:
            self.waiting.pop(text, None)
            return self._resolve(text, evidence, at, detected_at)
        if text in self.open:
            return []
        if held or at < self._cooling_until(text, evidence.direction):
            self.waiting[text] = evidence
            return []
        self.waiting.pop(text, None)
        return [self._fire(key, text, evidence, model_version, detected_at)]

    def due(self, key: AlertKey) -> float | None:
        """When a waiting condition's cooldown ends, in event time (None: it is not cooling down)."""
        evidence = self.waiting.get(key_text(key))
        if evidence is None:
            return None
        until = self._cooling_until(key_text(key), evidence.direction)
        return until if until > -math.inf else None

    def release(self, key: AlertKey, at: float, model_version: str, detected_at: float) -> list[Alert]:
        """Fire a waiting condition now (its cooldown is over, or it is no longer held back)."""
        text = key_text(key)
        evidence = self.waiting.get(text)
        if evidence is None or text in self.open or at < self._cooling_until(text, evidence.direction):
            return []
        del self.waiting[text]
        return [self._fire(key, text, evidence, model_version, detected_at)]

    def is_open(self, key: AlertKey) -> bool:
        return key_text(key) in self.open

    def close_all(self, keep: set[str], at: float, detected_at: float) -> list[Alert]:
        """Resolve the open episodes whose key text is not in ``keep`` (detectors no longer running)."""
        out = []
        for text in [t for t in self.open if t not in keep]:
            self.waiting.pop(text, None)
            out += self._resolve(text, self.open[text].evidence, at, detected_at)
        for text in [t for t in self.waiting if t not in keep]:
            del self.waiting[text]
        return out

    def _cooling_until(self, text: str, direction: int) -> float:
        last = self.resolved.get(text)
        if last is None or (direction and last[1] and direction != last[1]):
            return -math.inf  # never resolved, or a change the other way
        return last[0] + self.cooldown_s

    def _fire(self, key: AlertKey, text: str, evidence: Evidence, model_version: str, detected_at: float) -> Alert:
        episode = self.episodes[text] = self.episodes.get(text, 0) + 1
        alert_id = alert_id_for(self.model_id, *key, episode, segment=self.segment)
        alert = Alert(alert_id, self.model_id, model_version, "firing", evidence, detected_at, self.segment, text)
        self.open[text] = alert
        return alert

    def _resolve(self, text: str, evidence: Evidence, at: float, detected_at: float) -> list[Alert]:
        current = self.open.pop(text, None)
        if current is None:
            return []
        self.resolved[text] = (at, current.evidence.direction)
        cleared = replace(evidence, severity=current.evidence.severity, direction=current.evidence.direction)
        return [replace(current, status="resolved", evidence=cleared, detected_at=detected_at)]

    def status(self, feature: str | None = None) -> str:
        """``critical`` if an open alert is critical, ``warning`` if any is open, else ``ok``.

        With ``feature``, only the alerts on that feature count.
        """
        severities = {
            a.evidence.severity for a in self.open.values() if feature is None or a.evidence.feature == feature
        }
        return "critical" if "critical" in severities else ("warning" if severities else "ok")
