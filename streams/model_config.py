"""Per-model configuration as code: files applied with ``driftline models apply``, read live by workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors import MonitorConfig
from detectors.reference import Profile
from detectors.segments import SegmentMonitors
from streams.errors import ConfigurationError
from streams.keys import RedisKeys
from streams.redis_client import AsyncClient, SyncClient
from streams.reference import ReferenceStore
from streams.settings import Settings


class ModelConfig(BaseModel):
    """What one model's file may say. Unset fields keep the worker's defaults.

    >>> ModelConfig(model_id="churn", task="classification", ignore_features=["user_id"]).task
    'classification'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")
    task: Literal["classification", "regression"] | None = None
    positive_class: str | int | bool | None = None
    monitor_features: list[str] | None = None
    ignore_features: list[str] = Field(default_factory=list)
    baseline_events: int | None = Field(None, ge=50)
    metric_window: int | None = Field(None, ge=10)
    performance_min_drop: float | None = Field(None, gt=0, lt=1)
    missing_rate_min_jump: float | None = Field(None, gt=0, lt=1)
    false_alarm_budget_events: float | None = Field(None, ge=1e3)
    max_segments: int | None = Field(None, ge=0)
    concept_drift_detector: Literal["ddm", "eddm", "hddm_a", "adwin"] | None = None
    drift_window: int | None = Field(None, ge=50, le=100_000)
    reference_events: int | None = Field(None, ge=0)

    def monitor_config(self, settings: Settings) -> MonitorConfig:
        return monitor_config(settings, self.model_id, self)


def monitor_config(settings: Settings, model_id: str, config: ModelConfig | None = None) -> MonitorConfig:
    """The detectors' configuration: the model's file (if any) over the worker's settings."""
    file: dict[str, Any] = config.model_dump(exclude_none=True) if config is not None else {}
    return MonitorConfig(
        baseline_events=file.get("baseline_events", settings.baseline_events),
        metric_window=file.get("metric_window", settings.metric_window),
        performance_min_drop=file.get("performance_min_drop", settings.performance_min_drop),
        missing_rate_min_jump=file.get("missing_rate_min_jump", settings.missing_rate_min_jump),
        max_features=settings.max_features_per_model,
        task=file.get("task") or settings.task_overrides.get(model_id),
        only_features=tuple(file["monitor_features"]) if "monitor_features" in file else None,
        ignore_features=tuple(file.get("ignore_features", ())),
        positive_class=file.get("positive_class"),
        alert_cooldown_s=settings.alert_cooldown_s,
        reference_events=file.get("reference_events", settings.reference_events),
        concept_drift_detector=file.get("concept_drift_detector"),
        window=file.get("drift_window", settings.drift_window),
        budget_events=file.get("false_alarm_budget_events", settings.false_alarm_budget_events),
    )


def segment_monitors(
    settings: Settings,
    model_id: str,
    config: MonitorConfig,
    file: ModelConfig | None = None,
) -> SegmentMonitors:
    """The model's segment monitors: its file's ``max_segments`` (if set) over the worker's settings."""
    limit = file.max_segments if file is not None and file.max_segments is not None else settings.max_segments
    return SegmentMonitors(
        model_id,
        config,
        max_segments=limit,
        selection_events=settings.segment_selection_events,
        min_events=settings.segment_min_events,
    )


def load_file(path: Path) -> list[ModelConfig]:
    """Read one model's configuration (or a list) from a JSON or YAML file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        else:
            docs = [json.loads(text)]
        items = [item for doc in docs for item in (doc if isinstance(doc, list) else [doc])]
        return [ModelConfig.model_validate(item) for item in items]
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"{path}: {exc}") from None


class ModelConfigStore:
    """Model configurations in Redis: a hash of JSON, and a version counter workers poll."""

    def __init__(self, keys: RedisKeys) -> None:
        self.hash = f"{keys.prefix}model-config"
        self.version = f"{keys.prefix}model-config:version"
        self.references = ReferenceStore(keys)

    def apply(self, client: SyncClient, configs: list[ModelConfig]) -> int:
        """Store the files, then move the version: workers reread on every move, so they end with all of it.

        Two steps, not one transaction: the hash and the counter are in two Redis Cluster slots.
        """
        pipe = client.pipeline(transaction=False)
        for config in configs:
            pipe.hset(self.hash, config.model_id, config.model_dump_json(exclude_none=True))
        pipe.execute()
        return int(client.incr(self.version))

    def show(self, client: SyncClient) -> dict[str, dict[str, Any]]:
        return {
            k.decode() if isinstance(k, bytes) else k: orjson.loads(v) for k, v in client.hgetall(self.hash).items()
        }

    def bump(self, client: SyncClient) -> int:
        """Tell workers to reload (after a new reference, say)."""
        return int(client.incr(self.version))

    async def load_if_changed(
        self, client: AsyncClient, seen: int
    ) -> tuple[int, dict[str, ModelConfig], dict[str, dict[str, Profile]]] | None:
        """New configurations and reference profiles when the version moved past ``seen``, else None."""
        version = int(await client.get(self.version) or 0)
        if version == seen:
            return None
        # the worker's client does not decode responses: bytes, whatever redis-py's union says
        raw = cast(dict[bytes, bytes], await client.hgetall(self.hash))
        references = cast(dict[bytes, bytes], await client.hgetall(self.references.hash))
        return (
            version,
            {k.decode(): ModelConfig.model_validate_json(v) for k, v in raw.items()},
            {k.decode(): ReferenceStore.decode(v) for k, v in references.items()},
        )
