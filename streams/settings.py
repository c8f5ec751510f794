"""The one settings object. Nothing else in driftline reads the environment."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """driftline's configuration, read once from ``DRIFTLINE_*`` variables.

    >>> Settings(kafka_bootstrap="k:9092").topic_alerts
    'driftline.alerts'
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    # Connections
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka host:port (comma-separated for several)")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL; rediss://user:password@host:6380/0?ssl_ca_certs=/ca.pem for ACL and TLS",
    )
    redis_prefix: str = Field("driftline:", description="prefix of every Redis key")
    redis_mode: Literal["auto", "standalone", "cluster", "sentinel"] = Field(
        "auto",
        description="how to reach Redis; auto: from the URL's scheme (redis+cluster://, redis+sentinel://, "
        "else one server)",
    )
    redis_sentinel_master: str = Field(
        "mymaster",
        description="the master's name at the sentinels, when the sentinel URL's path does not give it",
    )
    redis_sentinel_password: SecretStr | None = Field(
        None,
        description="password of the sentinels themselves (the URL's credentials are the master's)",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how workers and tools talk to Kafka"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism, with a SASL protocol"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never written to logs)")
    kafka_ssl_cafile: str | None = Field(None, description="CA certificates that Kafka's TLS certificate must chain to")
    kafka_ssl_certfile: str | None = Field(None, description="client certificate, for mutual TLS")
    kafka_ssl_keyfile: str | None = Field(None, description="the client certificate's key")

    # Topics (contract v1 defaults)
    topic_predictions: str = Field("driftline.predictions", description="where prediction events come in")
    topic_outcomes: str = Field("driftline.outcomes", description="where outcome events (true labels) come in")
    topic_alerts: str = Field("driftline.alerts", description="where alerts go out")
    topic_deadletter: str = Field("driftline.deadletter", description="where rejected events go, with the reason")
    topic_events: str = Field(
        "driftline.events", description="internal: events forwarded to the worker that owns their model"
    )
    partitions: int = Field(
        8, ge=1, description="partitions of the topics driftline creates: the most workers that share the work"
    )
    replication_factor: int = Field(1, ge=1, description="replication of the topics driftline creates")

    # Worker
    app_id: str = Field("driftline", description="the Kafka consumer group of the workers")
    web_port: int | None = Field(None, description="the worker's web port (metrics, health, API); unset: off")
    fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        le=5000,
        description="how long a fetch waits for data "
        "(Faust's own is 1,500): an event reaches Redis in tens of milliseconds",
    )
    batch_window_s: float = Field(
        0.02,
        gt=0,
        description="how long applied events wait before their state is "
        "decided on and written (at most; 64 messages flush sooner)",
    )
    session_timeout_s: float = Field(30.0, gt=0, description="consumer-group session timeout")
    heartbeat_interval_s: float = Field(3.0, gt=0, description="consumer-group heartbeat interval")
    rebalance_timeout_s: float = Field(60.0, gt=0, description="consumer-group rebalance timeout")
    log_level: str = Field("info", description="worker log level")
    checkpoint_interval_s: float = Field(1.0, gt=0, description="how often a worker checkpoints its partitions")
    checkpoint_max_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="the most of the worker's time checkpoints may take: a large state stretches "
        "the interval (a longer replay after a crash, never a lost count)",
    )

    # Operations: health, metrics, the HTTP API
    ready_max_lag: int = Field(
        10_000,
        ge=0,
        description="/ready fails while the worker's partitions are more records behind than this, summed over them",
    )
    metrics_drift_features_per_model: int = Field(
        10,
        ge=0,
        description="driftline_feature_drift_score series per model: its highest-scoring features",
    )
    metrics_max_drift_series: int = Field(
        2_000,
        ge=0,
        description="driftline_feature_drift_score series per worker at most: the highest scores",
    )

    # Alert delivery (driftline notify)
    alertmanager_url: str | None = Field(
        None,
        description="Alertmanager's base URL (http://alertmanager:9093): alerts go to its v2 API",
    )
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated webhook URLs; each gets a body Slack's incoming webhooks accept",
    )
    notify_group: str | None = Field(
        None,
        description="prefix of notify's consumer groups, one per target; unset: <app_id>-notify",
    )
    notify_start: Literal["earliest", "latest"] = Field(
        "earliest",
        description="where a new target's consumer group starts reading the alerts topic",
    )
    notify_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one delivery")
    notify_max_backoff_s: float = Field(30.0, gt=0, description="longest wait between retries of a delivery")
    notify_resend_s: float = Field(
        60.0,
        gt=0,
        description="how often firing alerts are sent to Alertmanager again, so it keeps them active",
    )

    # Event time
    max_disorder_s: float = Field(
        10.0,
        ge=0,
        description="how far out of event-time order a model's events may arrive and still be decided on "
        "in order: the watermark is the newest prediction time minus this; decisions wait this long in event time",
    )
    watermark_idle_s: float = Field(
        1.0,
        gt=0,
        description="when no input at all arrives for this long (wall clock), every model's watermark "
        "moves to its newest event and everything held is decided on (Flink's idleness)",
    )
    decision_interval_s: float = Field(
        0.5,
        ge=0,
        description="how often (wall clock, at most) a model's events the watermark passed go to its join "
        "and detectors: bigger batches cost less per event, and decisions are the same for any batching; counts are "
        "live, and decisions already wait max_disorder_s in event time",
    )
    max_task_idle_ms: int = Field(
        100,
        ge=0,
        description="how long to wait for a partition that has unread records but none fetched before "
        "taking records with a later event time from the others (Kafka Streams' max.task.idle.ms)",
    )
    max_buffered_per_model: int = Field(
        200_000,
        ge=100,
        description="events a model holds for event-time order at most; beyond, the oldest go first",
    )

    # Join
    lateness_budget_s: float = Field(
        24 * 3600.0, gt=0, description="how long a prediction waits for its outcome, in event time"
    )
    outcome_grace_s: float = Field(
        600.0,
        gt=0,
        description="how long an outcome that came first waits for its prediction, in the predictions' event time",
    )
    max_pending_predictions: int = Field(
        100_000, ge=1, description="predictions one model keeps waiting for labels; beyond, the oldest expire"
    )
    max_pending_outcomes: int = Field(
        20_000,
        ge=1,
        description="early outcomes one model keeps waiting for their prediction; beyond, the oldest are unmatched",
    )

    # Monitoring
    baseline_events: int = Field(
        500,
        ge=50,
        description="values that form each missing-rate and error baseline, and after which a feature counts as new",
    )
    false_alarm_budget_events: float = Field(
        1e6,
        ge=1e3,
        description="expected events between false alarms per model, spread over its features and "
        "detectors (a model file may set false_alarm_budget_events)",
    )
    drift_window: int = Field(
        500, ge=50, le=100_000, description="values per windowed drift test (a model file may set drift_window)"
    )
    reference_events: int = Field(
        1000, ge=0, description="values that form a feature's reference when none was uploaded (0: windowed tests off)"
    )
    metric_window: int = Field(1000, ge=10, description="rolling window of the performance metric")
    performance_min_drop: float = Field(0.10, gt=0, lt=1, description="smallest accuracy drop that alerts")
    missing_rate_min_jump: float = Field(0.10, gt=0, lt=1, description="smallest missing-rate rise that alerts")
    task_overrides: dict[str, str] = Field(
        default_factory=dict, description="JSON: model id -> classification or regression"
    )
    alerts_stream_maxlen: int = Field(10_000, ge=1, description="length of the alerts stream in Redis")
    history_interval_s: float = Field(
        60.0,
        gt=0,
        description="event time between two points of a model's history (its metrics, counts, status "
        "and every feature's drift score and window statistics) in Redis",
    )
    history_retention_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="how much event time a model's history covers: its streams keep "
        "retention / interval points (10,080 by default), whatever the model's traffic",
    )
    history_max_features: int = Field(
        10,
        ge=0,
        description="features in one history point at most, the highest drift scores first (caps "
        "a model's history memory however many features it has)",
    )
    alert_cooldown_s: float = Field(
        300.0,
        ge=0,
        description="after a resolve, how long (in event time) the same "
        "alert in the same direction waits before it can fire again",
    )

    # Segments: the top segments of each model get detectors of their own, the others one pooled set
    max_segments: int = Field(
        5, ge=0, description="segments per model watched on their own, the others pooled (0: segments off)"
    )
    segment_selection_events: int = Field(
        10_000, ge=1, description="segment-carrying events counted to choose a model's segments"
    )
    segment_min_events: int = Field(500, ge=1, description="the least of those events a segment needs to be chosen")

    # Caps: overflow is counted and reported, memory stays bounded
    max_models_per_partition: int = Field(
        5_000,
        ge=1,
        description="models a partition keeps state for; events of others count in overflow_events",
    )
    max_features_per_model: int = Field(500, ge=1, description="features monitored per model")
    max_features_per_partition: int = Field(
        20_000,
        ge=1,
        description="features monitored across a partition's models (segments included); beyond, "
        "new features are counted in overflow_feature_values, not monitored",
    )
    max_pending_per_partition: int = Field(
        1_000_000,
        ge=1,
        description="predictions waiting for their label across a partition's models; beyond, "
        "the models holding the most give up their oldest, counted as expired",
    )
    max_held_per_partition: int = Field(
        500_000,
        ge=1,
        description="events held for event-time order across a partition's models; beyond, the "
        "models holding the most release their oldest early",
    )
    model_probation_events: int = Field(
        10,
        ge=1,
        description="predictions a model makes before it gets detectors: until then it costs only its "
        "counts and those events (a flood of one-off model ids stays cheap); its detectors then see them all",
    )

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @model_validator(mode="after")
    def _segment_sizes(self) -> Settings:
        if self.segment_min_events > self.segment_selection_events:
            raise ValueError("segment_min_events must not exceed segment_selection_events")
        return self
