"""The names of every Redis key driftline writes (contract v1), under one prefix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RedisKeys"]


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key names under a prefix. Braces make one model's keys share a cluster slot.

    >>> RedisKeys("driftline:").model("churn")
    'driftline:model:{churn}'
    """

    prefix: str = "driftline:"

    @property
    def models(self) -> str:
        return f"{self.prefix}models"

    @property
    def alerts_stream(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def notify_status(self) -> str:
        """Hash: each ``driftline notify`` target's delivery state (JSON)."""
        return f"{self.prefix}notify"

    @property
    def notify_rejected(self) -> str:
        """Stream: alerts a target refused for good (a 4xx answer), with the answer."""
        return f"{self.prefix}notify:rejected"

    def model(self, model_id: str) -> str:
        return f"{self.prefix}model:{{{model_id}}}"

    def features(self, model_id: str) -> str:
        return f"{self.model(model_id)}:features"

    def open_alerts(self, model_id: str) -> str:
        return f"{self.model(model_id)}:alerts"

    def segments(self, model_id: str) -> str:
        return f"{self.model(model_id)}:segments"

    def history(self, model_id: str) -> str:
        """Stream: the model's history, one point per ``history_interval_s`` of event time (JSON ``point``)."""
        return f"{self.model(model_id)}:history"

    def feature_history(self, model_id: str) -> str:
        """Stream: its features' drift scores and window statistics, at the same points."""
        return f"{self.model(model_id)}:history:features"

    def distributions(self, model_id: str) -> str:
        """Hash: feature name -> JSON of its reference against its recent values (shares per bin)."""
        return f"{self.model(model_id)}:distributions"
