"""What scripts and tests share, in one place: ``from scripts.harness import ...``.

* **Run settings** (:mod:`.runs`): :func:`run_env` gives the ``DRIFTLINE_*``
  variables of a run of its own (topics, consumer group, key prefix);
  :func:`settings_of` reads them as a worker would.
* **Child processes** (:mod:`streams.launch`, the one mechanism the embedded
  servers use too): :class:`ChildProcess`, and :class:`WorkerProcess` for
  ``driftline worker``; :func:`worker_registry` says which workers announced
  themselves, with their partitions.
* **Kafka clients** (:mod:`.kafka_clients`): :func:`kafka_producer`
  (kafka-python or confluent-kafka behind one :class:`Producer` interface that
  counts deliveries and failures), :func:`aio_producer` and :func:`produce`
  (aiokafka), :func:`read_topic` (from the beginning, in no consumer group).
* **Waiting** (:mod:`.waiting`): :func:`wait_for` (a deadline and stall
  detection), :func:`wait_for_counts` on the models' Redis hashes,
  :func:`model_counts` and :func:`model_hashes`.
* **A headless browser** (:mod:`.browser`): :func:`browser` (Debian's Chromium over the
  DevTools protocol, its network limited to loopback) yields a page that records every
  request; :func:`shown` reads what the dashboard shows.
* **Process costs** (:mod:`.costs`): :func:`peak_rss_mb`, :func:`cpu_seconds`,
  :class:`LoadMeter`, :func:`cpus`.
"""

from scripts.harness.costs import LoadMeter, cpu_seconds, cpus, peak_rss_mb
from scripts.harness.kafka_clients import Producer, aio_producer, kafka_producer, produce, read_topic
from scripts.harness.runs import GROUP_TIMING, run_env, settings_of
from scripts.harness.waiting import model_counts, model_hashes, wait_for_counts
from streams.launch import ChildProcess, WorkerProcess, wait_for, worker_registry

__all__ = [
    "GROUP_TIMING",
    "ChildProcess",
    "LoadMeter",
    "Producer",
    "WorkerProcess",
    "aio_producer",
    "cpu_seconds",
    "cpus",
    "kafka_producer",
    "model_counts",
    "model_hashes",
    "peak_rss_mb",
    "produce",
    "read_topic",
    "run_env",
    "settings_of",
    "wait_for",
    "wait_for_counts",
    "worker_registry",
]
