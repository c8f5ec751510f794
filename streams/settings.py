"""The one settings object. Nothing else in driftline reads the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """driftline's configuration, read once from ``DRIFTLINE_*`` variables.

    >>> Settings(kafka_bootstrap="k:9092").topic_alerts
    'driftline.alerts'
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    # Connections
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "driftline:"
    # Kafka security. Redis takes its password, ACL user and TLS in the URL:
    # rediss://user:password@host:6380/0?ssl_ca_certs=/etc/ssl/ca.pem
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    # Topics (contract v1 defaults)
    topic_predictions: str = "driftline.predictions"
    topic_outcomes: str = "driftline.outcomes"
    topic_alerts: str = "driftline.alerts"
    topic_deadletter: str = "driftline.deadletter"
    topic_events: str = "driftline.events"  # internal: validated events, partitioned by model_id
    partitions: int = Field(8, ge=1, description="partitions of topics driftline creates")
    replication_factor: int = Field(1, ge=1)

    # Worker
    app_id: str = "driftline"  # the Kafka consumer group
    web_port: int | None = None  # None: Faust's web server is off
    fetch_max_wait_ms: int = Field(20, ge=1, le=5000)
    batch_max_events: int = Field(2000, ge=1)
    batch_window_s: float = Field(0.02, gt=0)
    session_timeout_s: float = 30.0
    heartbeat_interval_s: float = 3.0
    rebalance_timeout_s: float = 60.0
    log_level: str = "info"
    checkpoint_interval_s: float = Field(1.0, gt=0, description="how often owned partitions are checkpointed")
    checkpoint_max_share: float = Field(
        0.1, gt=0, le=1, description="most of the worker's time checkpoints may take: the interval stretches to keep to it"
    )

    # Event time
    max_disorder_s: float = Field(
        10.0, ge=0, description="how far out of event-time order a model's events may arrive and still be decided on "
        "in order: the watermark is the newest prediction time minus this; decisions wait this long in event time",
    )
    watermark_idle_s: float | None = Field(
        None, gt=0, description="when no input arrives for this long (wall clock), every model's watermark moves to "
        "its newest event (Flink's idleness); unset: max_disorder_s",
    )
    max_task_idle_ms: int = Field(
        100, ge=0, description="how long to wait for a partition that has unread records but none fetched before "
        "taking records with a later event time from the others (Kafka Streams' max.task.idle.ms)",
    )
    max_buffered_per_model: int = Field(
        200_000, ge=100, description="events a model holds for event-time order at most; beyond, the oldest go first",
    )

    # Join
    lateness_budget_s: float = Field(24 * 3600.0, gt=0)
    outcome_grace_s: float = Field(600.0, gt=0)
    max_pending_predictions: int = Field(100_000, ge=1)
    max_pending_outcomes: int = Field(20_000, ge=1)

    # Monitoring
    baseline_events: int = Field(500, ge=50)
    false_alarm_budget_events: float = Field(
        1e6, ge=1e3, description="expected events between false alarms per model, across its detectors"
    )
    drift_window: int = Field(500, ge=50, le=100_000, description="values per windowed drift test")
    reference_events: int = Field(1000, ge=0, description="values per feature that form the windowed tests' reference (0: off)")
    metric_window: int = Field(1000, ge=10)
    performance_min_drop: float = Field(0.10, gt=0, lt=1)
    missing_rate_min_jump: float = Field(0.10, gt=0, lt=1)
    task_overrides: dict[str, str] = Field(default_factory=dict, description="model_id -> classification|regression")
    alerts_stream_maxlen: int = Field(10_000, ge=1)
    alert_cooldown_s: float = Field(300.0, ge=0, description="after a resolve, the same alert waits this long to fire again")

    # Segments: the top segments of each model get detectors of their own, the others one pooled set
    max_segments: int = Field(5, ge=0, description="segments monitored on their own per model (0: segments off)")
    segment_selection_events: int = Field(10_000, ge=1, description="segment-carrying events counted to choose them")
    segment_min_events: int = Field(500, ge=1, description="of those, the least a segment needs to be chosen")

    # Caps: overflow is counted and reported, memory stays bounded
    max_models_per_partition: int = Field(
        5_000, ge=1, description="models a partition keeps state for; events of others count in overflow_events",
    )
    max_features_per_model: int = Field(500, ge=1, description="features monitored per model")
    max_features_per_partition: int = Field(
        20_000, ge=1, description="features monitored across a partition's models (segments included); beyond, "
        "new features are counted in overflow_feature_values, not monitored",
    )
    max_pending_per_partition: int = Field(
        1_000_000, ge=1, description="predictions waiting for their label across a partition's models; beyond, "
        "the models holding the most give up their oldest, counted as expired",
    )
    max_held_per_partition: int = Field(
        500_000, ge=1, description="events held for event-time order across a partition's models; beyond, the "
        "models holding the most release their oldest early",
    )
    model_probation_events: int = Field(
        10, ge=1, description="predictions a model makes before it gets detectors: until then it costs only its "
        "counts and those events (a flood of one-off model ids stays cheap); its detectors then see them all",
    )

    @model_validator(mode="after")
    def _segment_sizes(self) -> Settings:
        if self.segment_min_events > self.segment_selection_events:
            raise ValueError("segment_min_events must not exceed segment_selection_events")
        return self
