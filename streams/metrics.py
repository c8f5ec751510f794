"""Prometheus metrics of one worker, computed when Prometheus scrapes ``/metrics``.

Per-model series come from the tasks the worker owns *at scrape time* (a
custom collector, not counters incremented along the way): a model that moved
to another worker in a rebalance stops being reported here, and its new owner
reports it, restored from the checkpoint. Summed over the workers, each
``driftline_<count>_total{model}`` therefore equals the model's count in Redis
once the workers are idle, also after a rebalance, with no double counting. A
moved model's series starts on its new worker at the full count; Prometheus
treats that as a new series, so ``sum by (model) (rate(...))`` has no spike.

``driftline_feature_drift_score`` is capped twice: each model reports its
``DRIFTLINE_METRICS_DRIFT_FEATURES_PER_MODEL`` (10) highest-scoring features,
and the worker its ``DRIFTLINE_METRICS_MAX_DRIFT_SERIES`` (2,000) highest
scores overall; ``driftline_feature_drift_series_omitted`` counts what the caps
left out. Every feature's score stays in Redis and the JSON API.

Faust's own sensors are not exported: driftline takes fetched batches
straight from the consumer, so Faust's per-message stream and agent sensors
would read zero; the worker's own counters and histograms below say more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from streams.state import ModelState

STATUS_VALUE = {"ok": 0, "warning": 1, "critical": 2}
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Per-model counts: metric name (without _total) -> (help, how to read it from the model's state)
MODEL_COUNTS: dict[str, tuple[str, Callable[[ModelState], int]]] = {
    "driftline_predictions": (
        "Valid prediction events of the model (equals predictions in Redis)",
        lambda s: s.predictions,
    ),
    "driftline_outcomes": ("Valid outcome events of the model (equals outcomes in Redis)", lambda s: s.outcomes),
    "driftline_joined": ("Outcomes joined to their prediction (equals joined in Redis)", lambda s: s.join.joined),
    "driftline_unmatched_outcomes": ("Outcomes that never found their prediction", lambda s: s.join.unmatched_outcomes),
    "driftline_expired": ("Predictions that waited past the lateness budget or were evicted", lambda s: s.join.expired),
    "driftline_invalid": ("Rejected events whose model_id was valid", lambda s: s.invalid),
    "driftline_late_events": ("Events later than the disorder bound allows", lambda s: s.late_events),
}

# Worker counters from PipelineStats: metric name (without _total) -> (help, field)
WORKER_COUNTS: dict[str, tuple[str, str]] = {
    "driftline_dead_letters": ("Rejected inputs sent to the dead-letter topic by this worker", "dead_letters"),
    "driftline_records": ("Kafka records this worker read", "records"),
    "driftline_events": ("Valid events this worker applied or forwarded", "events"),
    "driftline_forwarded_events": ("Events this worker forwarded to the task that owns their model", "forwarded"),
    "driftline_alerts_published": ("Alert transitions this worker published", "alerts"),
}

#: Every metric family a worker exports (histograms without their _bucket/_sum/_count suffixes).
METRIC_NAMES: frozenset[str] = frozenset(
    {
        *(f"{name}_total" for name in (*MODEL_COUNTS, *WORKER_COUNTS)),
        "driftline_alerts_open",
        "driftline_model_metric",
        "driftline_model_status",
        "driftline_models",
        "driftline_feature_drift_score",
        "driftline_feature_drift_series_omitted",
        "driftline_consumer_lag",
        "driftline_partitions_owned",
        "driftline_flush_seconds",
        "driftline_checkpoint_seconds",
    }
)


@dataclass(frozen=True)
class DriftCap:
    """The cardinality caps of ``driftline_feature_drift_score``.

    >>> DriftCap(per_model=2, total=2).keep([("a", [("x", 3.0), ("y", 2.0), ("z", 1.0)]), ("b", [("x", 2.5)])])
    ([('a', 'x', 3.0), ('b', 'x', 2.5)], 2)
    """

    per_model: int
    total: int

    def keep(self, scores: list[tuple[str, list[tuple[str, float]]]]) -> tuple[list[tuple[str, str, float]], int]:
        """The (model, feature, score) series to report, highest first, and how many the caps left out."""
        candidates, omitted = [], 0
        for model, features in scores:
            ranked = sorted(features, key=lambda f: (-f[1], f[0]))
            candidates += [(model, name, score) for name, score in ranked[: self.per_model]]
            omitted += max(0, len(ranked) - self.per_model)
        candidates.sort(key=lambda c: (-c[2], c[0], c[1]))
        return candidates[: self.total], omitted + max(0, len(candidates) - self.total)


class WorkerCollector:
    """The scrape-time collector: reads the pipeline's owned tasks and the consumer's lag.

    ``pipeline`` is a :class:`streams.pipeline.Pipeline` (its ``tasks`` and
    ``stats``); ``lags`` returns ``{(topic, partition): records behind}`` for
    the partitions assigned now.
    """

    def __init__(self, pipeline: Any, lags: Callable[[], dict[tuple[str, int], int]], cap: DriftCap) -> None:
        self.pipeline = pipeline
        self.lags = lags
        self.cap = cap

    def collect(self) -> Iterator[Metric]:
        states = [state for task in list(self.pipeline.tasks.values()) for state in list(task.models.values())]
        yield from self._counts(states)
        yield from self._model_gauges(states)
        yield from self._drift(states)
        yield from self._worker(len(states))

    def _counts(self, states: list[ModelState]) -> Iterator[Metric]:
        for name, (text, read) in MODEL_COUNTS.items():
            family = CounterMetricFamily(name, text, labels=["model"])
            for state in states:
                family.add_metric([state.model_id], read(state))
            yield family

    def _model_gauges(self, states: list[ModelState]) -> Iterator[Metric]:
        alerts = GaugeMetricFamily(
            "driftline_alerts_open",
            "Alerts firing now (model and segment alerts)",
            labels=["model", "kind", "severity"],
        )
        metric = GaugeMetricFamily(
            "driftline_model_metric", "The model's performance metrics, as in Redis", labels=["model", "metric"]
        )
        status = GaugeMetricFamily(
            "driftline_model_status", "The model's status: 0 ok, 1 warning, 2 critical", labels=["model"]
        )
        for state in states:
            counts: dict[tuple[str, str], int] = {}
            for alert in state.firing():
                key = (alert.evidence.kind, alert.evidence.severity)
                counts[key] = counts.get(key, 0) + 1
            for (kind, severity), n in sorted(counts.items()):
                alerts.add_metric([state.model_id, kind, severity], n)
            for name, value in sorted(state.metrics().items()):
                metric.add_metric([state.model_id, name], value)
            status.add_metric([state.model_id], STATUS_VALUE.get(state.status(), 0))
        yield from (alerts, metric, status)

    def _drift(self, states: list[ModelState]) -> Iterator[Metric]:
        scores = [
            (s.model_id, list(s.monitor.top_drifting(len(s.monitor.features)))) for s in states if s.monitor is not None
        ]
        kept, omitted = self.cap.keep(scores)
        family = GaugeMetricFamily(
            "driftline_feature_drift_score",
            "A feature's drift score: its strongest "
            "statistic over the calibrated threshold (1 or more: significant); capped",
            labels=["model", "feature"],
        )
        for model, feature, score in kept:
            family.add_metric([model, feature], score)
        yield family
        yield GaugeMetricFamily(
            "driftline_feature_drift_series_omitted",
            "Feature drift scores above 0 the cardinality caps left out",
            value=omitted,
        )

    def _worker(self, models: int) -> Iterator[Metric]:
        stats = self.pipeline.stats
        for name, (text, attribute) in WORKER_COUNTS.items():
            yield CounterMetricFamily(name, text, value=getattr(stats, attribute))
        lag = GaugeMetricFamily(
            "driftline_consumer_lag",
            "Records on the broker this worker has not fetched yet",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(self.lags().items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        yield GaugeMetricFamily("driftline_models", "Models this worker owns now", value=models)
        yield GaugeMetricFamily(
            "driftline_partitions_owned",
            "Events partitions (tasks) this worker owns now",
            value=len(self.pipeline.tasks),
        )


class WorkerMetrics:
    """One worker's registry: the scrape-time collector, the timing histograms and the process's own metrics.

    >>> from types import SimpleNamespace
    >>> from streams.pipeline import PipelineStats
    >>> metrics = WorkerMetrics(SimpleNamespace(tasks={}, stats=PipelineStats()), lambda: {}, DriftCap(10, 100))
    >>> metrics.observe("flush", 0.003)
    >>> b"driftline_flush_seconds_count 1.0" in metrics.exposition()
    True
    """

    def __init__(self, pipeline: Any, lags: Callable[[], dict[tuple[str, int], int]], cap: DriftCap) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series beside the histograms: noise on dashboards
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(WorkerCollector(pipeline, lags, cap))
        ProcessCollector(registry=self.registry)
        self.histograms = {
            what: Histogram(f"driftline_{what}_seconds", text, buckets=SECONDS_BUCKETS, registry=self.registry)
            for what, text in (
                ("flush", "Seconds of one flush: forwards, releases, detectors, alerts, Redis state"),
                ("checkpoint", "Seconds of one checkpoint: deliveries awaited, the fenced save, the offset commit"),
            )
        }

    def observe(self, what: str, seconds: float) -> None:
        """The pipeline's observer: one flush or checkpoint took ``seconds``."""
        histogram = self.histograms.get(what)
        if histogram is not None:
            histogram.observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def negotiate(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type the scraper asked for (its Accept header): OpenMetrics or text."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


__all__ = ["METRIC_NAMES", "DriftCap", "WorkerCollector", "WorkerMetrics"]
